"""Architecture registry: one name -> one builder, as timm's ``register_model``.

Architectures register themselves on import with :func:`register_model`; a duplicate
name is a programming error and raises immediately instead of silently shadowing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InvalidArgument, ModelNotFound

__all__ = ["Architecture", "register_model", "get_architecture", "list_architectures"]

StateDictFilter = Callable[[dict[str, torch.Tensor], nn.Module | None], dict[str, torch.Tensor]]


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


def register_model(name: str, *, input_size: int, family: str, filter_fn: StateDictFilter, task: str | None = None):
    """Decorator registering ``builder(num_classes, in_chans, **kwargs) -> nn.Module`` as ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _ARCHITECTURES:
            raise InvalidArgument(f"architecture {name!r} is already registered")
        doc = (builder.__doc__ or "").strip().splitlines()
        _ARCHITECTURES[name] = Architecture(name, builder, input_size, family, filter_fn, doc[0] if doc else "", task)
        return builder

    return decorate


def get_architecture(name: str) -> Architecture:
    """The registered architecture ``name``; :class:`ModelNotFound` lists the choices."""
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise ModelNotFound(f"unknown architecture {name!r}; available: {', '.join(sorted(_ARCHITECTURES))}") from None


def list_architectures(pattern: str | None = None) -> list[str]:
    """Registered architecture names, optionally filtered by a shell-style ``pattern``."""
    names = sorted(_ARCHITECTURES)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names
