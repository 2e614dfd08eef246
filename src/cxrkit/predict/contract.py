"""What a caller may rely on in a loaded model, checked once and typed.

``nn.Module`` answers any attribute it does not define as ``Tensor | Module``, so reading
``model.card`` or calling ``model.forward_features`` on a plain ``nn.Module`` hides what the
value is. A runner accepts any module that carries the parts it needs (a registry model, an
ONNX file standing in for one, a caller's own module), so these helpers check for those parts
where they are used and hand them back typed, instead of demanding one base class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import InvalidArgument

__all__ = ["Encoder", "FeatureModel", "HasClassifier", "classifier_of", "encoder_of", "features_of"]


@runtime_checkable
class FeatureModel(Protocol):
    """timm's split of the forward pass (see :class:`cxrkit.models.base.CxrModel`)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...


@runtime_checkable
class HasClassifier(Protocol):
    """A model whose linear head can be taken out (CAM, OOD scoring, fine-tuning)."""

    def get_classifier(self) -> nn.Module: ...


@runtime_checkable
class Encoder(Protocol):
    """An autoencoder's encoder half: films to latent codes."""

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


def features_of(model: nn.Module) -> FeatureModel:
    """``model`` as a :class:`FeatureModel`; refused when it lacks ``forward_features`` or ``forward_head``."""
    if not isinstance(model, FeatureModel):
        raise InvalidArgument(f"{type(model).__name__} has no forward_features/forward_head; build it with "
                              "cxrkit.models.create()")
    return model


def classifier_of(model: nn.Module) -> nn.Module:
    """The linear head of ``model``; refused when it has no ``get_classifier``."""
    if not isinstance(model, HasClassifier):
        raise InvalidArgument(f"{type(model).__name__} has no get_classifier(); build it with cxrkit.models.create()")
    return model.get_classifier()


def encoder_of(model: nn.Module) -> Encoder:
    """``model`` as an :class:`Encoder`; refused when it has no ``encode``."""
    if not isinstance(model, Encoder):
        raise InvalidArgument(f"{type(model).__name__} has no encode(); only an autoencoder has a latent code")
    return model
