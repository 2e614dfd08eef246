"""Models: an architecture registry, one factory, and weight files with typed model cards.

>>> from cxrkit import models
>>> model = models.create("densenet121.nih-demo")   # bundled demonstration weights
>>> model.card.labels[:3]
"""

from __future__ import annotations

from . import autoencoder, densenet, resnet  # noqa: F401  (architectures register themselves on import)
from ._registry import (
    Architecture,
    get_architecture,
    list_architectures,
    register_model,
)
from .base import CxrModel
from .calibration import activate, apply_operating_points, threshold_vector
from .card import ModelCard
from .factory import DEFAULT_MODEL, build, create, list_models, resolve_card
from .loading import card_of, check_device, load_model
from .store import cache_dir, save_weights

__all__ = [
    "CxrModel",
    "Architecture",
    "DEFAULT_MODEL",
    "ModelCard",
    "activate", "apply_operating_points",
    "build",
    "cache_dir",
    "card_of",
    "check_device",
    "create",
    "get_architecture",
    "list_architectures",
    "list_models",
    "load_model",
    "register_model",
    "resolve_card",
    "save_weights",
    "threshold_vector",
]
