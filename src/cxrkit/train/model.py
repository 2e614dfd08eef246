"""The model a training run starts from: an architecture with a head for the run's labels.

Its own module because both ends of a run need it: :mod:`.fit` builds the model it trains,
and :mod:`.export` builds the same one again to load the selected checkpoint into.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models import create, get_architecture
from ..predict.contract import classifier_of
from .config import TrainConfig

__all__ = ["build_model"]


def build_model(cfg: TrainConfig, labels: list[str], head_bias: float | None = None) -> nn.Module:
    """A fresh model with a head for ``labels``: random init, or ``model.weights`` with a new head if needed.

    ``head_bias`` fills the bias of a *new* head (regression: the training mean age, so an L1
    loss trains the features instead of spending thousands of steps moving the bias from 0).
    """
    if cfg.model.weights:
        pretrained = create(cfg.model.architecture, weights=cfg.model.weights)
        new_head = list(pretrained.card.labels) != list(labels)
        if new_head:
            pretrained.reset_classifier(len(labels))
        model: nn.Module = pretrained.train()
    else:
        kwargs = {"drop_rate": cfg.model.drop_rate} if cfg.model.drop_rate else {}
        model = get_architecture(cfg.model.architecture).builder(num_classes=len(labels), in_chans=1, **kwargs)
        new_head = True
    head = classifier_of(model) if cfg.task != "reconstruction" else None
    if new_head and head_bias is not None and head is not None:
        bias = head.bias
        assert isinstance(bias, torch.Tensor), "a new head is a linear layer with a bias"
        with torch.no_grad():
            bias.fill_(float(head_bias))
    if cfg.model.freeze_backbone and head is not None:
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for parameter in head.parameters():
            parameter.requires_grad_(True)
    return model
