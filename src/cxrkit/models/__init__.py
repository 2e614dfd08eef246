"""Models: an architecture registry, one factory, and weight files with typed model cards.

>>> from cxrkit import models
>>> model = models.create("densenet121.nih-demo")   # bundled demonstration weights
>>> model.card.labels[:3]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._registry import (
    Architecture,
    get_architecture,
    list_architectures,
    register_model,
)
from .card import ModelCard
from .factory import DEFAULT_MODEL, build, create, list_models, resolve_card
from .store import cache_dir, save_weights

if TYPE_CHECKING:
    from .base import CxrModel
    from .calibration import activate, apply_operating_points, threshold_vector
    from .loading import card_of, check_device, load_model

#: names whose modules import PyTorch, loaded on first use: listing models and reading
#: cards (``cxr models list``) stays free of that import. The architecture modules load
#: the same way, when :func:`get_architecture` first asks for one of theirs.
_LAZY = {
    "CxrModel": "base",
    "activate": "calibration", "apply_operating_points": "calibration", "threshold_vector": "calibration",
    "card_of": "loading", "check_device": "loading", "load_model": "loading",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
