"""Film clean-up and the per-film steps that run before a model sees an image.

CXR-Age converted its scanned PLCO films and NLST DICOMs with one ImageMagick line:
``-trim +repage -auto-level -depth 8 -resize 512x512^``. :func:`clean_film` is that
recipe in NumPy/OpenCV, so the same clean-up runs inside ``cxr predict``/``cxr age``
(``--clean-film``) and in ``cxr convert``, without ImageMagick:

1. **trim**: drop outer rows and columns whose every pixel equals the border colour (the
   median of the four corner pixels), within ``fuzz`` (a fraction of the white level;
   ImageMagick's default is 0, exact). A film that is one uniform value is an error.
2. **auto-level**: stretch the remaining pixels linearly so the darkest is 0 and the
   brightest is white.
3. **resize** so the *shortest* side is ``shortest`` pixels (``^`` in ImageMagick: fill),
   keeping the aspect ratio; area interpolation when shrinking. ``shortest=None`` keeps
   the size.
4. **8 bit**: round to 0..255 (ImageMagick quantises before resizing; resizing the
   full-precision values first and rounding once is more accurate, by at most 1 grey level).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnusableFilm
from .transforms import resize

if TYPE_CHECKING:
    from ..io import XrayImage
    from .orientation import OrientationFixer

__all__ = ["clean_film", "trim_box", "resize_shortest", "to_uint8", "FilmSteps"]


def trim_box(pixels: np.ndarray, fuzz: float = 0.0, maxval: float = 1.0) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` (exclusive ends) of the film inside its uniform border."""
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float64)
    border = float(np.median(corners))
    inside = np.abs(pixels.astype(np.float64) - border) > fuzz * maxval
    rows = np.flatnonzero(inside.any(axis=1))
    cols = np.flatnonzero(inside.any(axis=0))
    if rows.size == 0:
        raise UnusableFilm("the film is blank: every pixel has the same value, nothing to trim to")
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def clean_film(pixels: np.ndarray, maxval: float, shortest: int | None = 512, fuzz: float = 0.0,
               trim: bool = True) -> np.ndarray:
    """The CXR-Age film clean-up: trim, auto-level, shortest side ``shortest``, 8-bit (uint8)."""
    if pixels.ndim != 2:
        raise UnusableFilm(f"expected a single-channel film, got shape {pixels.shape}")
    if trim:
        top, bottom, left, right = trim_box(pixels, fuzz, maxval)
        pixels = pixels[top:bottom, left:right]
    x = pixels.astype(np.float32)
    low, high = float(x.min()), float(x.max())
    if high <= low:
        raise UnusableFilm("the film is blank: every pixel has the same value")
    return to_uint8(resize_shortest((x - low) / (high - low), shortest))


def resize_shortest(x: np.ndarray, shortest: int | None) -> np.ndarray:
    """Resize so the shortest side is ``shortest`` pixels, keeping the aspect ratio (None: as is)."""
    if shortest is None:
        return x
    h, w = x.shape
    scale = shortest / min(h, w)
    return resize(x, (max(1, round(h * scale)), max(1, round(w * scale))))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """``[0, 1]`` floats -> 0..255, rounded once."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


@dataclass
class FilmSteps:
    """What happens to a decoded film before the model: optional clean-up, then optional
    orientation fix. ``prepare`` returns the pixels, their white level and the row fields
    the steps report (the orientation found)."""

    clean: bool = False
    shortest: int | None = 512
    fuzz: float = 0.0
    orientation: OrientationFixer | None = None
    columns: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        from .orientation import Orientation

        self.columns = list(Orientation.COLUMNS) if self.orientation is not None else []

    def prepare(self, image: XrayImage) -> tuple[np.ndarray, float, dict[str, Any]]:
        pixels, maxval, info = image.pixels, float(image.maxval), {}
        if self.clean:
            pixels, maxval = clean_film(pixels, maxval, self.shortest, self.fuzz), 255.0
        if self.orientation is not None:
            pixels, found = self.orientation.fix(pixels, maxval)
            info = found.row()
        return pixels, maxval, info
