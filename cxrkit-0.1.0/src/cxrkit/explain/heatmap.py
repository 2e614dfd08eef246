"""The :class:`Heatmap` result and the geometry that puts a model-input map back on the radiograph.

Every method computes its map on the model input (a centre-cropped square, resized to
``input_size``). Users look at the film they gave, so the map is resized back to the
crop's side and placed at the crop's offset; the margins the crop cut away get 0
("no evidence"), never NaN, so overlays, sums and argmax all stay well defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..io import XrayImage
from ..preprocess import crop_box
from ..preprocess.geometry import map_peak

__all__ = ["Heatmap", "to_original_geometry", "to_input_geometry"]


@dataclass
class Heatmap:
    """One explanation of one label on one image.

    ``array`` is float32 (H, W) in the *original* image's pixel grid: in [0, 1] for
    every method except LIME, whose map is signed in [-1, 1] (positive regions support
    the label, negative ones speak against it). ``score`` is the model's output for
    ``label`` (a probability for classifiers, calibrated like ``cxr predict`` unless
    asked otherwise). ``meta`` records how the map was made (model, crop box, input
    size, options, film steps), enough to reproduce it. ``film`` is the film the map
    lies on: the image as given, or as the film steps left it (cleaned, turned
    upright), which is what an overlay must be drawn over.
    """

    array: np.ndarray
    label: str
    method: str
    score: float
    meta: dict[str, Any] = field(default_factory=dict)
    film: XrayImage | None = field(default=None, repr=False, compare=False)

    @property
    def signed(self) -> bool:
        """True when negative values carry meaning (LIME), so overlays use a diverging map."""
        return bool(self.meta.get("signed", False))

    @property
    def has_evidence(self) -> bool:
        """False when no pixel speaks for the label (e.g. Grad-CAM's ReLU removed everything).

        An all-zero map is a real answer, not a failure, but an overlay of it shows nothing,
        so callers say so instead of leaving the user to guess.
        """
        return bool(np.nanmax(self.array) > 0) if self.array.size else False

    def peak(self) -> tuple[int, int]:
        """``(row, col)`` of the strongest positive evidence, in original pixels (the pointing-game point).

        Where the maximum is a plateau (a LIME superpixel, a saturated CAM), the point is
        the plateau pixel nearest its centroid, not the first one in raster order, which
        would sit on the region's edge and depend on scan direction.
        """
        return map_peak(self.array)


def to_original_geometry(
    input_map: np.ndarray, original_shape: tuple[int, int], crop: bool = True, *, nearest: bool = False
) -> np.ndarray:
    """Map an (S, S) model-input map onto an image of ``original_shape`` (H, W), undoing resize and crop.

    Bilinear interpolation when enlarging (maps are smooth, nearest would show blocks),
    area when shrinking; ``nearest=True`` for piecewise-constant maps (LIME superpixels),
    whose regions must keep their one value. The cut-away margins are 0.
    """
    height, width = int(original_shape[0]), int(original_shape[1])
    src = np.ascontiguousarray(input_map, dtype=np.float32)
    if not crop:
        return _resize(src, height, width, nearest)
    top, left, side = crop_box((height, width))
    out = np.zeros((height, width), dtype=np.float32)
    out[top : top + side, left : left + side] = _resize(src, side, side, nearest)
    return out


def to_input_geometry(original_map: np.ndarray, size: int, crop: bool = True) -> np.ndarray:
    """The inverse view: the crop region of an original-geometry map, resized to (size, size)."""
    src = np.ascontiguousarray(original_map, dtype=np.float32)
    if crop:
        top, left, side = crop_box(src.shape)
        src = src[top : top + side, left : left + side]
    return _resize(np.ascontiguousarray(src), size, size)


def _resize(src: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    if src.shape == (height, width):
        return src.copy()
    shrinking = height < src.shape[0] or width < src.shape[1]
    method = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.resize(src, (width, height), interpolation=method)
