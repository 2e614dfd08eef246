"""The one value every reader returns: pixels, their white level, and metadata.

Readers differ wildly (8-bit PNG, 16-bit TIFF, MONOCHROME1 JPEG 2000 DICOM), so
they all agree to hand back the same thing: a 2-D array where bright means dense
(bone white, the MONOCHROME2 display convention), the value that means "white"
for that array (``maxval``), and a metadata dict with a fixed set of keys. The
white level travels with the pixels because downstream normalisation is
``(2 * x / maxval - 1) * 1024`` and a guessed 255 would silently crush 16-bit
images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidArgument

__all__ = ["XrayImage", "META_KEYS", "make_meta", "max_pixels", "check_pixel_count", "max_file_bytes",
           "check_file_size"]

#: Keys present in every ``XrayImage.meta`` (value ``None`` when unknown).
META_KEYS: tuple[str, ...] = (
    "source",
    "format",
    "bit_depth",
    "height",
    "width",
    "photometric",
    "modality",
    "view_position",
    "patient_age",
    "patient_sex",
    "pixel_spacing",
    "transfer_syntax",
    "window_source",
    "inverted",
)

#: Default refusal threshold for decompression bombs: 50 megapixels, 2.7x the largest
#: radiograph detectors (43x43 cm at 0.1 mm, ~4300x4300 = 18.5 MP) and above any digitised
#: film (35x43 cm at 0.1 mm, 15 MP), yet small enough that one accepted file, decoded and
#: turned into float32 display values, stays well under a gigabyte (see docs/reliability.md).
DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "CXRKIT_MAX_PIXELS"
#: Bytes a file may hold beyond its pixels: headers, overlays, icons, private tags.
HEADER_SLACK_BYTES = 16 << 20


@dataclass(frozen=True)
class XrayImage:
    """A decoded radiograph in display convention (bright = dense).

    ``pixels`` is 2-D (H, W): ``uint8``/``uint16`` for raster files exactly as
    stored, ``float32`` for DICOM after the modality and VOI transforms. Values
    lie in ``[0, maxval]``. The dataclass is frozen so metadata cannot drift away
    from the pixels; the array itself stays writable so preprocessing may work
    in place on its own copy.
    """

    pixels: np.ndarray
    maxval: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape


def make_meta(**values: Any) -> dict[str, Any]:
    """Return a metadata dict with every key of ``META_KEYS`` (``None`` when not given).

    Readers build metadata through this so consumers can index keys without
    ``.get`` and a forgotten key shows up as ``None`` rather than a KeyError
    deep inside a training loop. Extra keys are kept.
    """
    meta: dict[str, Any] = dict.fromkeys(META_KEYS)
    meta.update(values)
    return meta


def max_pixels() -> int:
    """Pixel-count limit, ``CXRKIT_MAX_PIXELS`` if set, else 50 megapixels.

    Read on every call (not at import) so tests and long-running servers can
    change it without reloading the module.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise InvalidArgument(
            f"{MAX_PIXELS_ENV} must be a number of pixels (e.g. 500000000), got {raw!r}"
        ) from None
    return value if value > 0 else DEFAULT_MAX_PIXELS


def check_pixel_count(path: object, width: int, height: int) -> None:
    """Refuse an image whose header claims more pixels than the limit, before decoding.

    A 60000x60000 PNG is a few hundred bytes on disk and 3.6 GB once decoded;
    checking the header first turns an out-of-memory kill into a clear error.
    """
    from ..errors import UnsupportedImage

    limit = max_pixels()
    n = int(width) * int(height)
    if n > limit:
        raise UnsupportedImage(
            path,
            f"image is {width}x{height} = {n / 1e6:.1f} megapixels, over the limit of "
            f"{limit / 1e6:.1f} megapixels that protects against decompression bombs; "
            f"if the file is genuine, raise the limit with the environment variable "
            f"{MAX_PIXELS_ENV}=<pixels>",
        )


def max_file_bytes(bytes_per_pixel: int) -> int:
    """The most bytes a file (or an inflated DICOM dataset) may hold: its pixels, uncompressed
    at ``bytes_per_pixel``, at the pixel limit, plus ``HEADER_SLACK_BYTES``.

    No image within the pixel limit needs more, so anything larger is refused before it is
    read into memory: the per-file memory budget then follows from the pixel limit alone.
    """
    return bytes_per_pixel * max_pixels() + HEADER_SLACK_BYTES


def check_file_size(path: object, size: int, bytes_per_pixel: int) -> None:
    """Refuse a file of ``size`` bytes beyond ``max_file_bytes``, before it is read into memory."""
    from ..errors import UnsupportedImage

    limit = max_file_bytes(bytes_per_pixel)
    if size > limit:
        raise UnsupportedImage(
            path,
            f"file of {size / 1e6:.1f} MB is larger than any image within the limit of "
            f"{max_pixels() / 1e6:.1f} megapixels needs ({limit / 1e6:.1f} MB at {bytes_per_pixel} bytes "
            f"per pixel); if the file is genuine, raise the limit with the environment variable "
            f"{MAX_PIXELS_ENV}=<pixels>",
        )
