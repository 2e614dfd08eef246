"""A web page and a REST API over cxrkit's models: ``cxr serve``.

For people who will never open a terminal (the page at ``/``: drop films, read the
calibrated scores, click a label for its Grad-CAM, print a report) and for programs in
any language (``/v1/predict`` returns the rows of ``cxr predict --format jsonl``,
``/v1/age``, ``/v1/explain``, ``/v1/models``; OpenAPI at ``/openapi.json``).

>>> from cxrkit.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig())          # loads the bundled models; any ASGI server runs it

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart): ``pip install "cxrkit[serve]"``.
"""

from __future__ import annotations

from .config import ServeConfig, read_token
from .errors import (
    BadRequest,
    NotLoaded,
    PayloadTooLarge,
    ServeError,
    ServerBusy,
    Unauthorized,
)

__all__ = ["ServeConfig", "read_token", "create_app", "run", "Service", "ServeError", "BadRequest", "NotLoaded",
           "PayloadTooLarge", "ServerBusy", "Unauthorized"]


def __getattr__(name: str):
    """FastAPI and uvicorn load on first use, so a missing extra is named, not a bare ImportError."""
    if name in ("create_app", "run", "Service"):
        from ..errors import MissingDependency

        try:
            from . import api, server, service
        except ImportError as exc:
            raise MissingDependency("cxrkit[serve]", f"cxr serve ({exc.name} is missing)") from None
        return {"create_app": api.create_app, "run": server.run, "Service": service.Service}[name]
    raise AttributeError(f"module 'cxrkit.serve' has no attribute {name!r}")
