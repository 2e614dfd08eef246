"""The card of a loaded model, typed: what every runner reads its labels, task and input size from."""

from __future__ import annotations

from torch import nn

from ..errors import InvalidArgument
from ..models.card import ModelCard

__all__ = ["card_of"]


def card_of(model: nn.Module) -> ModelCard:
    """The :class:`ModelCard` a loaded model carries as ``.card``.

    ``nn.Module`` answers any unknown attribute as ``Tensor | Module``, so reading
    ``model.card`` directly would hide the card's type from every caller; this checks it once.
    """
    card = getattr(model, "card", None)
    if not isinstance(card, ModelCard):
        raise InvalidArgument("the model has no .card; build it with cxrkit.models.create()")
    return card
