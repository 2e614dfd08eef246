"""DenseNet-121 for single-channel radiographs, in TorchXRayVision's layer layout.

The module tree (``features.conv0``, ``features.denseblock1.denselayer1.norm1``, ...,
``classifier``) is torchvision's, which is also TorchXRayVision's, so its published
state dicts load without renaming; :func:`checkpoint_filter_fn` only mends the old
``norm.1``-style keys some early checkpoints carry.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ._registry import register_model
from .base import CxrModel

__all__ = ["DenseNet121", "densenet121", "checkpoint_filter_fn"]


class DenseNet121(CxrModel):
    """DenseNet-121 with a 1-channel stem; the surface of :class:`~cxrkit.models.base.CxrModel`."""

    num_features = 1024

    def __init__(self, num_classes: int = 18, in_chans: int = 1, drop_rate: float = 0.0):
        super().__init__()
        base = torchvision.models.densenet121(weights=None, num_classes=num_classes, drop_rate=drop_rate)
        base.features.conv0 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.features = base.features
        self.classifier = base.classifier

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(N, 1024, 7, 7)`` at 224 px, after the final ReLU (what CAM and Grad-CAM look at)."""
        return F.relu(self.features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes)


_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Map a TorchXRayVision / torchvision DenseNet state dict onto :class:`DenseNet121`.

    Drops non-parameter entries TorchXRayVision may store (``op_threshs``), and renames
    the pre-0.4 torchvision ``norm.1`` keys to ``norm1``.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "op_threshs":
            continue
        match = _OLD_KEY.match(key)
        if match:
            key = match.group(1) + match.group(2)
        out[key] = value
    return out


@register_model("densenet121", input_size=224, family="densenet", filter_fn=checkpoint_filter_fn)
def densenet121(num_classes: int = 18, in_chans: int = 1, **kwargs) -> DenseNet121:
    """DenseNet-121 (CheXNet's and TorchXRayVision's default), 224 px input."""
    return DenseNet121(num_classes=num_classes, in_chans=in_chans, **kwargs)
