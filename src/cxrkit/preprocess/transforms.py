"""Turn a decoded radiograph into the model's input: one convention for every path.

The pixel contract (docs/design.md, contract 1): single channel, float32, in [-1024, 1024], computed
exactly as TorchXRayVision does, ``(2 * x / maxval - 1) * 1024``, with ``maxval`` taken
from the source file (never assumed 255). Published TorchXRayVision weights therefore
work unchanged, and a 16-bit file is not silently pushed off the scale.

Transforms are small callables over ``np.ndarray`` (H, W) so they compose with
:class:`Compose`; :class:`KeyedTransform` applies one to fields of a sample dict, so an
image and its mask move together (MONAI's dictionary-transform idea). The geometric ones
(:class:`CenterCrop`, :class:`Resize`) also take a whole sample dict and move its ``boxes``
(and drop the ``box_labels`` of boxes cut away) and ``mask`` with the image; see
:mod:`.geometry` for the conventions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cv2
import numpy as np

from ..errors import InvalidArgument
from .geometry import box_areas, clip_boxes, resize_mask, scale_boxes, shift_boxes

__all__ = [
    "normalize",
    "center_crop",
    "crop_box",
    "resize",
    "Normalize",
    "CenterCrop",
    "Resize",
    "Compose",
    "KeyedTransform",
    "center_crop_sample",
    "resize_sample",
    "model_input",
    "ModelInput",
    "inference_transform",
]

Array = np.ndarray


def normalize(pixels: Array, maxval: float) -> Array:
    """Scale ``[0, maxval]`` to ``[-1024, 1024]`` in float32, as TorchXRayVision does.

    Values above ``maxval`` mean the caller passed the wrong white level; that would
    shift every prediction silently, so it is an error rather than a clip. Float rounding of
    an interpolating resize (area interpolation can land 1e-7 relative above the brightest
    input pixel) is not such a value and is let through.
    """
    if maxval <= 0:
        raise InvalidArgument(f"maxval must be positive, got {maxval}")
    x = np.asarray(pixels, dtype=np.float32)
    peak = float(x.max()) if x.size else 0.0
    if peak > maxval * (1.0 + 1e-5):
        raise InvalidArgument(f"image maximum {peak} exceeds its declared white level maxval={maxval}")
    return (2.0 * (x / np.float32(maxval)) - 1.0) * np.float32(1024.0)


def center_crop(pixels: Array) -> Array:
    """Crop the long side to a centred square (TorchXRayVision's ``XRayCenterCrop`` geometry).

    Returns a view; the offsets are those of ``XRayCenterCrop`` so heatmaps and boxes
    can be mapped back with :func:`crop_box`.
    """
    top, left, side = crop_box(pixels.shape[-2:])
    return pixels[..., top : top + side, left : left + side]


def crop_box(shape: Sequence[int]) -> tuple[int, int, int]:
    """``(top, left, side)`` of the centred square crop of an image of ``shape`` (H, W)."""
    height, width = int(shape[0]), int(shape[1])
    side = min(height, width)
    return height // 2 - side // 2, width // 2 - side // 2, side


def resize(pixels: Array, size: int | tuple[int, int]) -> Array:
    """Resize a 2-D image to ``size`` (int = square), keeping float32.

    Area interpolation when shrinking (no aliasing, and 3-4x faster than skimage's
    Gaussian-then-bilinear), bilinear when enlarging, where area has nothing to average.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    in_h, in_w = pixels.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return np.asarray(pixels, dtype=np.float32)
    shrinking = out_h < in_h or out_w < in_w
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    src = np.ascontiguousarray(pixels, dtype=np.float32)
    return cv2.resize(src, (out_w, out_h), interpolation=method)


class Normalize:
    """Callable form of :func:`normalize` with a fixed white level."""

    def __init__(self, maxval: float):
        self.maxval = float(maxval)

    def __call__(self, pixels: Array) -> Array:
        return normalize(pixels, self.maxval)

    def __repr__(self) -> str:
        return f"Normalize(maxval={self.maxval:g})"


def _set_boxes(sample: dict[str, Any], boxes: Array, shape: Sequence[int]) -> None:
    """Store moved boxes, clipped to the image; boxes left with no area go, with their labels."""
    boxes = clip_boxes(boxes, shape)
    keep = box_areas(boxes) > 0
    sample["boxes"] = boxes[keep]
    if sample.get("box_labels") is not None:
        sample["box_labels"] = tuple(label for label, k in zip(sample["box_labels"], keep, strict=True) if k)


def center_crop_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """:func:`center_crop` of a sample's ``image`` (H, W or C, H, W), with its ``mask`` and ``boxes``."""
    out = dict(sample)
    top, left, side = crop_box(np.shape(sample["image"])[-2:])
    out["image"] = center_crop(sample["image"])
    if sample.get("mask") is not None:
        out["mask"] = center_crop(sample["mask"]).copy()
    if sample.get("boxes") is not None:
        _set_boxes(out, shift_boxes(sample["boxes"], left, top), (side, side))
    return out


def resize_sample(sample: dict[str, Any], size: int | tuple[int, int]) -> dict[str, Any]:
    """:func:`resize` of a sample's ``image``; its ``mask`` nearest-neighbour, its ``boxes`` scaled."""
    out = dict(sample)
    image = np.asarray(sample["image"])
    shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if image.ndim == 3:
        out["image"] = np.stack([resize(channel, shape) for channel in image])
    else:
        out["image"] = resize(image, shape)
    if sample.get("mask") is not None:
        out["mask"] = resize_mask(sample["mask"], shape)
    if sample.get("boxes") is not None:
        _set_boxes(out, scale_boxes(sample["boxes"], image.shape[-2:], shape), shape)
    return out


class CenterCrop:
    """Callable form of :func:`center_crop`; a sample dict moves its mask and boxes too."""

    def __call__(self, pixels: Any) -> Any:
        if isinstance(pixels, dict):
            return center_crop_sample(pixels)
        return center_crop(pixels)

    def __repr__(self) -> str:
        return "CenterCrop()"


class Resize:
    """Callable form of :func:`resize`; a sample dict moves its mask and boxes too."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = size

    def __call__(self, pixels: Any) -> Any:
        if isinstance(pixels, dict):
            return resize_sample(pixels, self.size)
        return resize(pixels, self.size)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class Compose:
    """Apply transforms in order; the list is kept so a model card can record it."""

    def __init__(self, transforms: Iterable[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, value: Any) -> Any:
        for transform in self.transforms:
            value = transform(value)
        return value

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"


class KeyedTransform:
    """Apply one array transform to the named fields of a sample dict, leaving others as they are.

    A missing key is skipped (a sample without a mask is still a valid sample).
    """

    def __init__(self, transform: Callable[[Array], Array], keys: Sequence[str] = ("image",)):
        self.transform = transform
        self.keys = tuple(keys)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        out = dict(sample)
        for key in self.keys:
            if key in out and out[key] is not None:
                out[key] = self.transform(out[key])
        return out

    def __repr__(self) -> str:
        return f"KeyedTransform({self.transform!r}, keys={self.keys})"


def model_input(pixels: Array, maxval: float, size: int, crop: bool = True) -> Array:
    """The whole inference recipe for one image: crop, resize, normalise -> (1, size, size) float32.

    Resizing before normalising is equivalent (both are linear) and cheaper, because the
    normalisation then touches ``size**2`` pixels instead of the full film; the crop is a
    view, so a 3000 px DICOM costs one resize and one small affine map.
    """
    if crop:
        pixels = center_crop(pixels)
    small = resize(pixels, size)
    return normalize(small, maxval)[None]


class ModelInput:
    """Callable form of :func:`model_input` for one model: ``(pixels, maxval) -> (1, size, size)`` float32.

    What :meth:`cxrkit.models.ModelCard.transforms` returns, so every runner prepares a film
    the way the card says; a plain object (not a closure), so a runner holding one can be
    pickled to worker processes.
    """

    def __init__(self, size: int, crop: bool = True):
        self.size, self.crop = int(size), bool(crop)

    def __call__(self, pixels: Array, maxval: float) -> Array:
        return model_input(pixels, maxval, self.size, self.crop)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelInput) and (self.size, self.crop) == (other.size, other.crop)

    def __hash__(self) -> int:
        return hash((self.size, self.crop))

    def __repr__(self) -> str:
        return f"ModelInput(size={self.size}, crop={self.crop})"


def inference_transform(size: int, crop: bool = True) -> Callable[[Array, float], Array]:
    """A reusable ``(pixels, maxval) -> input`` function for a model's input size."""
    return ModelInput(size, crop)
