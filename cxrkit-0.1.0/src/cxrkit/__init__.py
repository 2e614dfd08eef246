"""cxrkit: deep learning on chest X-rays.

Heavy submodules (torch models, DICOM codecs) load on first use, so ``import cxrkit``
stays cheap for tools that only need, say, the label vocabulary.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:  # pyproject.toml is the one place the version is written; the installed metadata carries it
    __version__ = version("cxrkit")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

_LAZY = {
    "read_image": ("cxrkit.io", "read_image"),
    "create_model": ("cxrkit.models", "create"),
    "Predictor": ("cxrkit.predict", "Predictor"),
    "predict_files": ("cxrkit.predict", "predict_files"),
    "PATHOLOGIES": ("cxrkit.labels", "PATHOLOGIES"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'cxrkit' has no attribute {name!r}")
