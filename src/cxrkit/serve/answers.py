"""How the server answers a refusal, and how it notices a client that left.

Errors are cxrkit's typed errors, answered as ``{"detail": "<one sentence>"}`` with the
status they carry. A request refused before its body was read has the rest drained first
(within the body limits), or the connection closed after the answer, so the client reads
the status instead of a reset. Work for a client that disconnected is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..errors import CxrkitError, ModelNotFound, UnreadableImage
from ..explain import ExplainError
from ..predict import error_reason
from .errors import ClientGone, ServeError, ServerBusy, Unauthorized
from .uploads import Limits, drain

__all__ = ["error_response", "closing_if_undrained", "unless_gone"]


def _status(exc: CxrkitError) -> int:
    if isinstance(exc, ServeError):
        return exc.status
    if isinstance(exc, ModelNotFound):
        return 404
    if isinstance(exc, (UnreadableImage, ExplainError)):
        return 422
    return 400


def error_response(exc: CxrkitError) -> JSONResponse:
    headers = {}
    if isinstance(exc, ServerBusy):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    message = exc.message if isinstance(exc, ServeError) else error_reason(exc)
    return JSONResponse({"detail": message}, status_code=_status(exc), headers=headers)


async def unless_gone(request: Request, work: Awaitable[Any], on_gone: Callable[[], None] | None = None) -> Any:
    """Await ``work``; if the client disconnects first, call ``on_gone`` (running decodes are
    killed) and cancel it (a queued job is dropped, never run).

    Called once the body has been read, when the next message can only be the disconnect.
    """
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            request.state.client_gone = True
            if on_gone is not None:
                on_gone()
            task.cancel()
        watcher.cancel()
    if task.cancelled():
        raise ClientGone("the client closed the connection before its answer was ready")
    return task.result()


async def closing_if_undrained(request: Request, response: Response, limits: Limits) -> Response:
    """Drain what is left of a refused body, so its client reads ``response``; else close after it."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not await drain(request, limits):
        response.headers["Connection"] = "close"
    return response
