"""Typed errors of the server, each carrying the HTTP status it answers with.

They are :class:`~cxrkit.errors.CxrkitError` subclasses like every other cxrkit error, so
the library's own failures (an unreadable film, an unknown label) and the server's
(too large, busy, no token) go through one exception handler and reach the user as one
clear sentence, never as a stack trace.
"""

from __future__ import annotations

from ..errors import CxrkitError

__all__ = ["ServeError", "BadRequest", "Unauthorized", "PayloadTooLarge", "RequestTimeout", "ClientGone", "ServerBusy",
           "NotLoaded"]


class ServeError(CxrkitError):
    """A request the server refuses; ``status`` is the HTTP status code of the answer."""

    status = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class BadRequest(ServeError, ValueError):
    """The request is malformed (no file, a bad option value); the message names the problem."""

    status = 422


class Unauthorized(ServeError, PermissionError):
    """The server was started with ``--token-file`` and the request has no or the wrong bearer token."""

    status = 401


class PayloadTooLarge(ServeError, ValueError):
    """A file or the whole request is over the configured size limit."""

    status = 413


class RequestTimeout(ServeError, TimeoutError):
    """The client sent its body too slowly (a pause or the whole body over the server's time limit)."""

    status = 408


class ClientGone(ServeError, ConnectionError):
    """The client closed the connection before its request was read; nobody reads the answer."""

    status = 400


class ServerBusy(ServeError, RuntimeError):
    """The model's queue is full (or the server is stopping); retry after ``retry_after`` seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int):
        self.retry_after = int(retry_after)
        super().__init__(message)


class NotLoaded(ServeError, KeyError):
    """The request names a model this server did not load at start-up."""

    status = 404

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message
