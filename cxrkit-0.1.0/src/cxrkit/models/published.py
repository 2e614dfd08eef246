"""The table of TorchXRayVision's published weights, as data (``xrv_published.json``).

Keeps URL, architecture, head label order and operating thresholds of each published
file, so ``cxr models fetch densenet121-res224-all`` can download, convert and
calibrate it without TorchXRayVision installed. Thresholds are keyed by label name.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ModelNotFound

__all__ = ["names", "get", "cxrkit_name"]

_TABLE = Path(__file__).with_name("xrv_published.json")


@lru_cache(maxsize=1)
def _models() -> dict[str, dict[str, Any]]:
    return json.loads(_TABLE.read_text(encoding="utf-8"))["models"]


def names() -> list[str]:
    """TorchXRayVision names of every published model cxrkit can fetch."""
    return list(_models())


def _lookup(name: str) -> tuple[str, dict[str, Any]] | None:
    for xrv_name, entry in _models().items():
        if name in (xrv_name, entry["cxrkit_name"]):
            return xrv_name, entry
    return None


def get(name: str) -> dict[str, Any]:
    """The table entry for a TorchXRayVision name or its cxrkit id (``densenet121.res224-all``)."""
    found = _lookup(name)
    if found is None:
        raise ModelNotFound(f"{name!r} is not a published TorchXRayVision model; known: {', '.join(names())}")
    xrv_name, entry = found
    return {"xrv_name": xrv_name, **entry}


def cxrkit_name(name: str) -> str | None:
    """cxrkit id of a published model named either way, or None if ``name`` is not one."""
    found = _lookup(name)
    return found[1]["cxrkit_name"] if found else None
