"""Training augmentation on (1, H, W) tensors in [-1024, 1024], with torchvision.transforms.v2.

Each sample is augmented under its own seed (drawn by the sampler from the run seed and
the epoch), so the same run gives the same images whatever the number of workers, and a
run resumed after a kill sees exactly what an uninterrupted one would have seen.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from .config import AUGMENT_PRESET_VALUES as PRESETS
from .config import AugmentConfig

__all__ = ["PRESETS", "Augment", "build_augment"]

BLACK = -1024.0


def resolved(cfg: AugmentConfig) -> dict[str, float | bool]:
    """The effective augmentation values (see :meth:`AugmentConfig.resolved`)."""
    return cfg.resolved()


class _Intensity(torch.nn.Module):
    """Random brightness (shift) and contrast (gain around the mean), clipped to the pixel range."""

    def __init__(self, brightness: float, contrast: float):
        super().__init__()
        self.brightness, self.contrast = float(brightness), float(contrast)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.contrast:
            gain = 1.0 + (torch.rand(()).item() * 2 - 1) * self.contrast
            mean = x.mean()
            x = (x - mean) * gain + mean
        if self.brightness:
            x = x + (torch.rand(()).item() * 2 - 1) * self.brightness * 2048.0
        return x.clamp(-1024.0, 1024.0)


class Augment:
    """Callable ``(image, seed) -> image``; identity when every value is off."""

    def __init__(self, cfg: AugmentConfig, size: int):
        self.values = values = resolved(cfg)
        steps: list[torch.nn.Module] = []
        if values["crop_scale"] < 1.0:
            steps.append(v2.RandomResizedCrop(size, scale=(float(values["crop_scale"]), 1.0), antialias=True))
        if values["flip"]:
            steps.append(v2.RandomHorizontalFlip())
        if values["rotate"] or values["translate"] or values["scale"]:
            scale = float(values["scale"])
            steps.append(v2.RandomAffine(
                degrees=float(values["rotate"]),
                translate=(float(values["translate"]),) * 2 if values["translate"] else None,
                scale=(1.0 - scale, 1.0 + scale) if scale else None,
                fill=BLACK,
            ))
        if values["perspective"]:
            steps.append(v2.RandomPerspective(distortion_scale=float(values["perspective"]), p=0.5, fill=BLACK))
        if values["brightness"] or values["contrast"]:
            steps.append(_Intensity(float(values["brightness"]), float(values["contrast"])))
        self.transform = v2.Compose(steps) if steps else None

    @property
    def active(self) -> bool:
        return self.transform is not None

    def __call__(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        if self.transform is None:
            return image
        # v2 draws from the global generator; fork it so augmentation neither depends on
        # nor disturbs the training RNG (dropout), and is reproducible per sample.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self.transform(image)

    def __repr__(self) -> str:
        on = {k: v for k, v in self.values.items() if v not in (0.0, False, 1.0) or (k == "flip" and v)}
        return f"Augment({on})"


def build_augment(cfg: AugmentConfig, size: int) -> Augment:
    return Augment(cfg, size)
