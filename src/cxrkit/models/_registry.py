"""Architecture registry: one name -> one builder, as timm's ``register_model``.

Architectures register themselves on import with :func:`register_model`; a duplicate
name is a programming error and raises immediately instead of silently shadowing.
The built-in ones are named in :data:`BUILT_IN` with the module that defines them, so
listing them (``cxr models list``) costs no PyTorch import; their module is imported
the first time one of them is asked for.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from ..errors import InvalidArgument, ModelNotFound

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Architecture", "register_model", "get_architecture", "list_architectures"]

StateDictFilter: TypeAlias = "Callable[[dict[str, torch.Tensor], nn.Module | None], dict[str, torch.Tensor]]"


@dataclass(frozen=True)
class Architecture:
    """What the factory needs to know about an architecture besides its code."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: int
    family: str
    filter_fn: StateDictFilter
    description: str
    #: the task fixed by the architecture itself (``"reconstruction"`` for autoencoders);
    #: None for classifiers, whose card says which head task its weights were trained for
    task: str | None = None


_ARCHITECTURES: dict[str, Architecture] = {}

#: built-in architecture -> the module of this package that registers it when imported
BUILT_IN = {
    "densenet121": "densenet",
    "resnet18": "resnet", "resnet34": "resnet", "resnet50": "resnet",
    "resnet101_ae": "autoencoder", "small_resnet_ae": "autoencoder",
}


def register_model(name: str, *, input_size: int, family: str, filter_fn: StateDictFilter, task: str | None = None):
    """Decorator registering ``builder(num_classes, in_chans, **kwargs) -> nn.Module`` as ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        # a built-in name is taken before its module loads: another builder must not claim it first
        if name in _ARCHITECTURES or (name in BUILT_IN and builder.__module__ != f"{__package__}.{BUILT_IN[name]}"):
            raise InvalidArgument(f"architecture {name!r} is already registered")
        doc = (builder.__doc__ or "").strip().splitlines()
        _ARCHITECTURES[name] = Architecture(name, builder, input_size, family, filter_fn, doc[0] if doc else "", task)
        return builder

    return decorate


def get_architecture(name: str) -> Architecture:
    """The registered architecture ``name``; :class:`ModelNotFound` lists the choices."""
    if name not in _ARCHITECTURES and name in BUILT_IN:
        importlib.import_module(f"{__package__}.{BUILT_IN[name]}")  # registers it
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise ModelNotFound(f"unknown architecture {name!r}; available: {', '.join(list_architectures())}") from None


def list_architectures(pattern: str | None = None) -> list[str]:
    """Registered architecture names, optionally filtered by a shell-style ``pattern``."""
    names = sorted(set(BUILT_IN) | set(_ARCHITECTURES))
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names
