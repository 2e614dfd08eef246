"""Fetch TorchXRayVision's published weights: download, verify, convert, register.

The raw download goes to ``<cache>/downloads/`` (resumable), the converted model to
``<cache>/models/<id>.safetensors`` + card, after which ``create("densenet121.res224-all")``
and ``cxr predict --model densenet121-res224-all`` find it. A user without internet
copies the original file into the downloads folder by hand; the error says where.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from . import published
from .download import download
from .import_xrv import import_torchxrayvision
from .store import cache_dir

__all__ = ["fetch", "download_path"]


def download_path(name: str, url: str | None = None) -> Path:
    """Where the original file of published model ``name`` is (or will be) kept."""
    entry = published.get(name)
    filename = Path(urlparse(url or entry["url"]).path).name
    return cache_dir() / "downloads" / filename


def fetch(
    name: str,
    *,
    url: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download and convert published model ``name`` (either naming); returns its card path.

    ``url`` overrides the release URL (a mirror); ``sha256`` pins the download.
    """
    entry = published.get(name)
    source = url or entry["url"]
    raw = download_path(name, url)
    raw.parent.mkdir(parents=True, exist_ok=True)
    hint = f"If this machine is offline, download {source} elsewhere and copy it to {raw}, then run the command again."
    download(source, raw, sha256=sha256 or entry.get("sha256"), timeout=timeout, progress=progress, manual_hint=hint)
    out = cache_dir() / "models" / f"{entry['cxrkit_name']}.safetensors"
    return import_torchxrayvision(raw, out, published_name=entry["xrv_name"], source_url=source)
