"""Shared model plumbing for the methods: a staged view of a registry model, frozen weights, label picking.

Every cxrkit model (:class:`cxrkit.models.CxrModel`) exposes ``forward_features`` (the last
conv map, after its activation) and ``forward_head``, a linear head over the
global-average-pooled map. That split is what CAM and
Grad-CAM need, and it lets Grad-CAM skip the expensive part of backpropagation: the
trunk runs without autograd and only the tiny pooled head is differentiated, so a
Grad-CAM costs about one forward pass (the speed claim in ``benchmarks/explain_cost.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..predict.contract import features_of
from .errors import ExplainError

__all__ = ["Staged", "frozen", "head_order_scores"]


class _Trunk(nn.Module):
    """The model up to its last feature map, as a module that hooks can attach to."""

    def __init__(self, model: nn.Module, detach: bool):
        super().__init__()
        self.model = model
        self.detach = detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.detach:
            return features_of(self.model).forward_features(x)
        with torch.no_grad():
            fmap = features_of(self.model).forward_features(x)
        return fmap.detach().requires_grad_(True)


class Staged(nn.Module):
    """``head(avgpool(trunk(x)))``, equal to ``model(x)`` for every registry model.

    ``detach_trunk=True`` makes the feature map a leaf that requires grad, so gradients
    stop there (all Grad-CAM needs); pass False for methods that need input gradients.
    """

    def __init__(self, model: nn.Module, detach_trunk: bool = True):
        super().__init__()
        for name in ("forward_features", "forward_head"):
            if not callable(getattr(model, name, None)):
                raise ExplainError(
                    f"{type(model).__name__} has no {name}(); CAM-family methods need a cxrkit model "
                    "(cxrkit.models.create) or pass layer= to name the convolutional layer"
                )
        self.model = model
        self.trunk = _Trunk(model, detach_trunk)

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return features_of(self.model).forward_head(fmap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration, restored afterwards.

    Explanations need gradients with respect to inputs or feature maps only; leaving
    ``requires_grad`` on would make autograd compute (and store in ``.grad``) every
    weight gradient, doubling the cost and dirtying a model the caller may be training.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        model.eval()
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def head_order_scores(model: nn.Module, logits: torch.Tensor, calibrate: bool = True) -> torch.Tensor:
    """Model outputs ``(N, K)`` -> scores as ``cxr predict`` reports them, in head order.

    Sigmoid for multilabel (operating-point calibrated when the card has thresholds and
    ``calibrate``), softmax for multiclass, identity for regression.
    """
    from ..models import activate, apply_operating_points, threshold_vector

    card = getattr(model, "card", None)
    task = getattr(card, "task", "multilabel")
    probs = activate(logits.detach().float(), task)
    if task != "multilabel":
        return probs
    if calibrate and card is not None and card.thresholds:
        calibrated = apply_operating_points(probs, threshold_vector(list(card.labels), card.thresholds))
        probs = torch.where(torch.isnan(calibrated), probs, calibrated)
    return probs
