"""The model a training run starts from: an architecture with a head for the run's labels.

Its own module because both ends of a run need it: :mod:`.fit` builds the model it trains,
and :mod:`.export` builds the same one again to load the selected checkpoint into. Both
come from :func:`cxrkit.models.create`, the factory inference uses, so a model in training
is the same typed object, card included, as the one ``cxr predict`` loads.
"""

from __future__ import annotations

import torch

from ..models import CxrModel, ModelCard, create, get_architecture
from .config import TrainConfig

__all__ = ["build_model", "training_card"]


def training_card(cfg: TrainConfig, labels: list[str]) -> ModelCard:
    """The card of a model while it trains: what its head and input are, and no numbers yet.

    Export measures the selected checkpoint and writes the card with every number; until
    then the model carries this one, so the runners (validation scoring goes through the
    :class:`~cxrkit.predict.Predictor`) and explainers see the run's labels, task and size.
    """
    size = cfg.model.input_size or get_architecture(cfg.model.architecture).input_size
    return ModelCard(
        name=cfg.name,
        architecture=cfg.model.architecture,
        labels=list(labels),
        input_size=size,
        task=cfg.task,
        description=f"{cfg.model.architecture} in training with cxrkit ({cfg.task}); not yet measured",
        provenance={"source": "cxr train, before export",
                    "started_from": cfg.model.weights or "random initialisation (no pretrained weights)"},
    ).validate()


def build_model(cfg: TrainConfig, labels: list[str], head_bias: float | None = None) -> CxrModel:
    """A fresh model with a head for ``labels``: random init, or ``model.weights`` with a new head if needed.

    ``head_bias`` fills the bias of a *new* head (regression: the training mean age, so an L1
    loss trains the features instead of spending thousands of steps moving the bias from 0).
    """
    drop_rate = float(cfg.model.drop_rate)
    if cfg.model.weights:
        model = create(cfg.model.architecture, weights=cfg.model.weights, drop_rate=drop_rate)
        new_head = list(model.card.labels) != list(labels)
        if new_head:
            model.reset_classifier(len(labels))
    else:
        model = create(cfg.model.architecture, labels=list(labels), drop_rate=drop_rate)
        new_head = True
    model.card = training_card(cfg, labels)
    head = model.get_classifier() if cfg.task != "reconstruction" else None
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
    return model.train()
