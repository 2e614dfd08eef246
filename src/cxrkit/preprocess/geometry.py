"""Boxes and masks in pixel space: how they move when the image does, and how they meet a map.

Boxes are ``(N, 4)`` float arrays ``x0, y0, x1, y1`` in the pixel grid of their image
(x to the right, y down, edges on pixel borders, so a box covering pixel columns 10..19 is
``x0=10, x1=20``). Masks are ``(H, W)`` uint8. Geometry is done on box corners (a rotated box
becomes the axis-aligned box of its rotated corners) and masks move with nearest-neighbour
interpolation, so a mask stays binary and a box stays on the pixels it was drawn on. The
same functions score explanation maps (a peak inside a box, a thresholded map against a
region), which is why they live below both evaluation and explanation.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "as_boxes", "xywh_to_xyxy", "scale_boxes", "shift_boxes", "clip_boxes", "box_areas", "flip_boxes",
    "rotate_boxes", "resize_mask", "boxes_to_mask", "map_peak", "point_in_boxes", "iou",
]

Shape = Sequence[int]


def as_boxes(boxes: object) -> np.ndarray:
    """Any ``(N, 4)``-like value (or None) as a float32 ``(N, 4)`` array; an empty one when None."""
    if boxes is None:
        return np.zeros((0, 4), dtype=np.float32)
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return out


def xywh_to_xyxy(boxes: object) -> np.ndarray:
    """``x, y, width, height`` (NIH, RSNA) -> ``x0, y0, x1, y1``."""
    b = as_boxes(boxes).copy()
    b[:, 2:] += b[:, :2]
    return b


def scale_boxes(boxes: object, from_shape: Shape, to_shape: Shape) -> np.ndarray:
    """Boxes drawn on an image of ``from_shape`` (H, W), on the same image resized to ``to_shape``."""
    b = as_boxes(boxes)
    sy, sx = to_shape[0] / from_shape[0], to_shape[1] / from_shape[1]
    return b * np.array([sx, sy, sx, sy], dtype=np.float32)


def shift_boxes(boxes: object, dx: float, dy: float) -> np.ndarray:
    """Boxes after the image origin moved to ``(dx, dy)`` (a crop whose top-left corner is there)."""
    return as_boxes(boxes) - np.array([dx, dy, dx, dy], dtype=np.float32)


def clip_boxes(boxes: object, shape: Shape) -> np.ndarray:
    """Boxes cut to an image of ``shape`` (H, W); a box wholly outside becomes zero-area."""
    b = as_boxes(boxes).copy()
    b[:, 0::2] = b[:, 0::2].clip(0, shape[1])
    b[:, 1::2] = b[:, 1::2].clip(0, shape[0])
    return b


def box_areas(boxes: object) -> np.ndarray:
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def flip_boxes(boxes: object, shape: Shape, horizontal: bool = True) -> np.ndarray:
    """Boxes of an image mirrored left-right (``horizontal``) or top-bottom."""
    b = as_boxes(boxes).copy()
    if horizontal:
        b[:, [0, 2]] = shape[1] - b[:, [2, 0]]
    else:
        b[:, [1, 3]] = shape[0] - b[:, [3, 1]]
    return b


def rotate_boxes(boxes: object, matrix: np.ndarray, shape: Shape) -> np.ndarray:
    """Boxes under a 2x3 affine ``matrix`` (as for ``cv2.warpAffine``): the axis-aligned box of the
    four moved corners, clipped to the output ``shape``. Enclosing the corners over-covers a
    rotated box a little, never cuts it."""
    b = as_boxes(boxes)
    if not len(b):
        return b
    corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)  # (N, 4, 2)
    moved = corners @ np.asarray(matrix, dtype=np.float32)[:, :2].T + np.asarray(matrix, dtype=np.float32)[:, 2]
    out = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    return clip_boxes(out, shape)


def resize_mask(mask: np.ndarray, shape: Shape) -> np.ndarray:
    """A mask resized with nearest-neighbour interpolation, so it stays binary and aligned."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if m.shape == (int(shape[0]), int(shape[1])):
        return m.copy()
    # NEAREST_EXACT samples source pixel centres; plain NEAREST (floor) shifts the mask by up to half a pixel
    return cv2.resize(m, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_NEAREST_EXACT)


def boxes_to_mask(boxes: object, shape: Shape) -> np.ndarray:
    """The union of boxes as an (H, W) uint8 mask: pixel (r, c) is inside when its centre is."""
    out = np.zeros((int(shape[0]), int(shape[1])), dtype=np.uint8)
    for x0, y0, x1, y1 in clip_boxes(boxes, shape):
        c0, c1 = int(np.ceil(x0 - 0.5)), int(np.ceil(x1 - 0.5))
        r0, r1 = int(np.ceil(y0 - 0.5)), int(np.ceil(y1 - 0.5))
        out[r0:r1, c0:c1] = 1
    return out


def map_peak(array: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of a map's maximum.

    Where the maximum is a plateau (a LIME superpixel, a saturated CAM), the point is the
    plateau pixel nearest its centroid, not the first one in raster order, which would sit
    on the region's edge and depend on scan direction.
    """
    a = np.asarray(array)
    top = float(np.nanmax(a))
    rows, cols = np.nonzero(np.isclose(a, top, rtol=1e-6, atol=0.0))
    if len(rows) == 1:
        return int(rows[0]), int(cols[0])
    nearest = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[nearest]), int(cols[nearest])


def point_in_boxes(point: tuple[float, float], boxes: object, tolerance: float = 0.0) -> bool:
    """Whether pixel ``(row, col)`` lies in any box grown by ``tolerance`` pixels on every side.

    The pixel's centre ``(col + 0.5, row + 0.5)`` is tested, the convention of :func:`boxes_to_mask`.
    """
    b = as_boxes(boxes)
    y, x = point[0] + 0.5, point[1] + 0.5
    t = float(tolerance)
    return bool(np.any((b[:, 0] - t <= x) & (x <= b[:, 2] + t) & (b[:, 1] - t <= y) & (y <= b[:, 3] + t)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two same-shape binary masks; NaN when both are empty."""
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b)) / union if union else float("nan")
