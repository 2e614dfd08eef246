"""Activation-map methods: Grad-CAM, Grad-CAM++ (grad-cam library) and CheXNet-style CAM.

All three read the last convolutional feature map, so one forward pass gives both the
prediction and the map; the label can therefore be chosen ("top") from the very logits
being explained, with no second pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import MissingDependency
from ..predict.contract import classifier_of, features_of
from ._model import Staged
from .errors import ExplainError

__all__ = ["gradcam", "cam"]

Pick = Callable[[torch.Tensor], int]


class _LazyTarget:
    """A grad-cam target that picks its output index from the logits it is handed.

    grad-cam calls targets with each sample's output vector; choosing the index there
    lets ``label="top"`` reuse the Grad-CAM forward pass instead of running another.
    """

    def __init__(self, pick: Pick):
        self.pick = pick
        self.index: int | None = None

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if self.index is None:
            self.index = int(self.pick(output.detach()[None]))
        return output[self.index]


def gradcam(
    model: nn.Module, x: torch.Tensor, pick: Pick, *, plus_plus: bool = False, layer: str | None = None
) -> tuple[np.ndarray, torch.Tensor, int, dict]:
    """Grad-CAM (Selvaraju et al. 2017) or Grad-CAM++ (Chattopadhay et al. 2018) via ``pytorch_grad_cam``.

    The default layer is the model's last feature map after its final ReLU
    (``forward_features``); ``layer`` names any module instead (e.g.
    ``"features.denseblock3"``), at the price of a full backward pass.
    """
    try:
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise MissingDependency("grad-cam", "Grad-CAM explanations") from None
    kind = GradCAMPlusPlus if plus_plus else GradCAM
    if layer is None:
        wrapped: nn.Module = Staged(model, detach_trunk=True)
        target_layer = wrapped.trunk
        layer_name = "forward_features"
        inp = x
    else:
        try:
            target_layer = model.get_submodule(layer)
        except AttributeError:
            raise ExplainError(f"model has no layer {layer!r}; see [n for n, _ in model.named_modules()]") from None
        wrapped, layer_name = model, layer
        inp = x.detach().clone().requires_grad_(True)  # weights are frozen: the graph must start at the input
    target = _LazyTarget(pick)
    with kind(model=wrapped, target_layers=[target_layer]) as engine:
        heat = engine(input_tensor=inp, targets=[target])[0]
        logits = engine.outputs.detach()[0]
    assert target.index is not None
    return heat.astype(np.float32), logits, target.index, {"layer": layer_name}


def cam(model: nn.Module, x: torch.Tensor, pick: Pick) -> tuple[np.ndarray, torch.Tensor, int, dict]:
    """Class activation map (Zhou et al. 2016), as CheXNet and reproduce-chexnet draw it.

    The head is linear over the average-pooled map, so applying it at every spatial
    position gives ``sum_k w_k A_k(i, j) + b``: exactly CAM, without naming the head's
    attribute (``classifier`` on DenseNet, ``model.fc`` on ResNet). Min-max scaled to
    [0, 1] as reproduce-chexnet does; no gradients at all.
    """
    staged = Staged(model, detach_trunk=True)
    with torch.no_grad():
        fmap = features_of(model).forward_features(x)
        logits = staged.head(fmap)[0]
        index = int(pick(logits[None]))
        _, channels, height, width = fmap.shape
        per_position = classifier_of(model)(fmap[0].permute(1, 2, 0).reshape(-1, channels))
        raw = per_position[:, index].reshape(height, width).float()
    raw = raw - raw.min()
    top = float(raw.max())
    raw = raw / top if top > 0 else raw
    size = x.shape[-1]
    up = torch.nn.functional.interpolate(raw[None, None], size=(x.shape[-2], size), mode="bilinear", align_corners=False)
    return up[0, 0].numpy().astype(np.float32), logits, index, {"layer": "forward_features"}
