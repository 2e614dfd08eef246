"""Name -> spec registry: ``list_datasets()`` and ``get_dataset(name, root, label_file, ...)``."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

from ..errors import InvalidArgument
from .base import DatasetSpec, XrayDataset
from .errors import UnknownDataset

__all__ = ["register_dataset", "list_datasets", "get_spec", "get_dataset"]

_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a spec; a second spec under the same name is an error, not a silent override."""
    if spec.name in _REGISTRY:
        raise InvalidArgument(f"dataset {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}") from None


def get_dataset(name: str, root: str | os.PathLike | None = None, label_file: str | os.PathLike | None = None,
                **kwargs: Any) -> XrayDataset:
    """Build a registered dataset, e.g. ``get_dataset("nih", "images/", "Data_Entry_2017_v2020.csv", views="PA")``."""
    return XrayDataset(get_spec(name), root, label_file, **kwargs)


def _register_builtins() -> None:
    from . import chexpert, kaggle, nih, openi, padchest, tb

    for spec in (nih.NIH, nih.NIH_GOOGLE, chexpert.CHEXPERT, chexpert.MIMIC, chexpert.BRAX, padchest.PADCHEST,
                 kaggle.RSNA, kaggle.SIIM, kaggle.VINDR, openi.OPENI, tb.NLM_TB, tb.TBX11K, tb.COVID19):
        register_dataset(spec)


_register_builtins()
