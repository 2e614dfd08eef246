"""ResNets for single-channel radiographs, in TorchXRayVision's layer layout.

TorchXRayVision wraps torchvision's ResNet as ``self.model``, so its state dict keys
are ``model.conv1.weight`` ... ``model.fc.bias``; keeping the same wrapper means its
published ``resnet50-res512-all`` state dict loads unchanged. ResNet-18 and -34 use the
same wrapper: small, fast backbones for tasks that need no fine detail (orientation,
age from a small sample), trainable on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ._registry import register_model
from .base import CxrModel

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "checkpoint_filter_fn"]

_TORCHVISION = {18: (torchvision.models.resnet18, 512), 34: (torchvision.models.resnet34, 512),
                50: (torchvision.models.resnet50, 2048)}


class ResNet(CxrModel):
    """A torchvision ResNet with a 1-channel stem; the surface of :class:`~cxrkit.models.base.CxrModel`."""

    def __init__(self, depth: int = 50, num_classes: int = 18, in_chans: int = 1, drop_rate: float = 0.0):
        """``drop_rate``: dropout on the pooled vector before ``fc`` while training (timm's ResNet
        meaning; torchvision's ResNet has none)."""
        super().__init__()
        builder, self.num_features = _TORCHVISION[depth]
        self.model = builder(weights=None, num_classes=num_classes)
        self.model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.drop_rate = float(drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last residual stage (what CAM and Grad-CAM look at)."""
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        if pre_logits:
            return pooled
        return self.model.fc(F.dropout(pooled, p=self.drop_rate, training=self.training) if self.drop_rate else pooled)

    def get_classifier(self) -> nn.Module:
        return self.model.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.model.fc = nn.Linear(self.num_features, num_classes)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Accept both TorchXRayVision's ``model.``-prefixed keys and bare torchvision keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "op_threshs":
            continue
        out[key if key.startswith("model.") else "model." + key] = value
    return out


@register_model("resnet50", input_size=512, family="resnet", filter_fn=checkpoint_filter_fn)
def resnet50(num_classes: int = 18, in_chans: int = 1, **kwargs) -> ResNet:
    """ResNet-50, 512 px input (TorchXRayVision's high-resolution model)."""
    return ResNet(50, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet34", input_size=224, family="resnet", filter_fn=checkpoint_filter_fn)
def resnet34(num_classes: int = 18, in_chans: int = 1, **kwargs) -> ResNet:
    """ResNet-34, 224 px input (the backbone CXR-Age used for its rotation detector)."""
    return ResNet(34, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet18", input_size=224, family="resnet", filter_fn=checkpoint_filter_fn)
def resnet18(num_classes: int = 18, in_chans: int = 1, **kwargs) -> ResNet:
    """ResNet-18, 224 px input: the smallest backbone, for CPU-trained models."""
    return ResNet(18, num_classes=num_classes, in_chans=in_chans, **kwargs)
