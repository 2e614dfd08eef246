"""Training augmentation on (1, H, W) tensors in [-1024, 1024], with torchvision.transforms.v2.

Each sample is augmented under its own seed (drawn by the sampler from the run seed and
the epoch), so the same run gives the same images whatever the number of workers, and a
run resumed after a kill sees exactly what an uninterrupted one would have seen.
:meth:`Augment.sample` moves a sample's ``boxes`` and ``mask`` with its image (torchvision's
bounding-box and mask types: boxes by their corners, masks nearest-neighbour, filled with 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from .config_data import AugmentConfig

__all__ = ["PRESETS", "Augment", "build_augment"]

BLACK = -1024.0
#: The presets' values (they live on :class:`AugmentConfig`, so a config validates without this module)
PRESETS = AugmentConfig.PRESETS


def resolved(cfg: AugmentConfig) -> dict[str, float | bool]:
    """The effective augmentation values (see :meth:`AugmentConfig.resolved`)."""
    return cfg.resolved()


class _Intensity(v2.Transform):
    """Random brightness (shift) and contrast (gain around the mean), clipped to the pixel range.
    Pixel values only: boxes and masks pass through unchanged."""

    def __init__(self, brightness: float, contrast: float):
        super().__init__()
        self.brightness, self.contrast = float(brightness), float(contrast)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        gain = 1.0 + (torch.rand(()).item() * 2 - 1) * self.contrast if self.contrast else 1.0
        shift = (torch.rand(()).item() * 2 - 1) * self.brightness * 2048.0 if self.brightness else 0.0
        return {"gain": gain, "shift": shift}

    def transform(self, x: Any, params: dict[str, Any]) -> Any:
        if isinstance(x, (tv_tensors.BoundingBoxes, tv_tensors.Mask)):
            return x
        if self.contrast:
            mean = x.mean()
            x = (x - mean) * params["gain"] + mean
        if self.brightness:
            x = x + params["shift"]
        return x.clamp(-1024.0, 1024.0)


class _ResizedCrop(v2.RandomResizedCrop):
    """``RandomResizedCrop`` whose masks are resized with exact nearest-neighbour sampling.

    torchvision's mask kernel uses the legacy ``NEAREST`` rule (source index ``floor(i * scale)``),
    which shifts an enlarged mask by up to half a source pixel against the image; ``NEAREST_EXACT``
    samples pixel centres, as the image and the boxes do.
    """

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Mask):
            return super().transform(inpt, params)
        cropped = v2.functional.crop(inpt, params["top"], params["left"], params["height"], params["width"])
        return v2.functional.resize(cropped, list(self.size), interpolation=v2.InterpolationMode.NEAREST_EXACT)


class Augment:
    """Callable ``(image, seed) -> image``; identity when every value is off."""

    def __init__(self, cfg: AugmentConfig, size: int):
        self.values = values = resolved(cfg)
        steps: list[torch.nn.Module] = []
        if values["crop_scale"] < 1.0:
            steps.append(_ResizedCrop(size, scale=(float(values["crop_scale"]), 1.0), antialias=True))
        if values["flip"]:
            steps.append(v2.RandomHorizontalFlip())
        if values["rotate"] or values["translate"] or values["scale"]:
            scale = float(values["scale"])
            steps.append(v2.RandomAffine(
                degrees=float(values["rotate"]),
                translate=(float(values["translate"]),) * 2 if values["translate"] else None,
                scale=(1.0 - scale, 1.0 + scale) if scale else None,
                fill={tv_tensors.Image: BLACK, "others": 0},
            ))
        if values["perspective"]:
            steps.append(v2.RandomPerspective(distortion_scale=float(values["perspective"]), p=0.5,
                                              fill={tv_tensors.Image: BLACK, "others": 0}))
        if values["brightness"] or values["contrast"]:
            steps.append(_Intensity(float(values["brightness"]), float(values["contrast"])))
        self.transform = v2.Compose(steps) if steps else None

    @property
    def active(self) -> bool:
        return self.transform is not None

    def __call__(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        if self.transform is None:
            return image
        return self._run({"image": tv_tensors.Image(image)}, seed)["image"].as_subclass(torch.Tensor)

    def _run(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        if self.transform is None:
            return inputs
        # v2 draws from the global generator; fork it so augmentation neither depends on
        # nor disturbs the training RNG (dropout), and is reproducible per sample.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self.transform(inputs)

    def sample(self, sample: dict[str, Any], seed: int) -> dict[str, Any]:
        """Augment a sample dict: its ``image`` (1, H, W) with its ``boxes`` (N, 4 x0, y0, x1, y1)
        and ``mask`` (H, W), all under one draw. Boxes are clipped to the image; those left
        with no area are dropped together with their ``box_labels``."""
        out = dict(sample)
        if self.transform is None:
            return out
        image = tv_tensors.Image(torch.as_tensor(np.asarray(sample["image"], dtype=np.float32)))
        inputs: dict[str, Any] = {"image": image}
        if sample.get("boxes") is not None:
            boxes = torch.as_tensor(np.asarray(sample["boxes"], dtype=np.float32).reshape(-1, 4))
            inputs["boxes"] = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=tuple(image.shape[-2:]))
        if sample.get("mask") is not None:
            inputs["mask"] = tv_tensors.Mask(torch.as_tensor(np.asarray(sample["mask"], dtype=np.uint8)))
        moved = self._run(inputs, seed)
        out["image"] = moved["image"].as_subclass(torch.Tensor)
        if "mask" in moved:
            out["mask"] = moved["mask"].as_subclass(torch.Tensor)
        if "boxes" in moved:
            boxes = v2.functional.clamp_bounding_boxes(moved["boxes"]).as_subclass(torch.Tensor)
            keep = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
            out["boxes"] = boxes[keep]
            if sample.get("box_labels") is not None:
                out["box_labels"] = tuple(label for label, k in zip(sample["box_labels"], keep.tolist(), strict=True) if k)
        return out

    def __repr__(self) -> str:
        on = {k: v for k, v in self.values.items() if v not in (0.0, False, 1.0) or (k == "flip" and v)}
        return f"Augment({on})"


def build_augment(cfg: AugmentConfig, size: int) -> Augment:
    return Augment(cfg, size)
