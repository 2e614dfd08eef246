"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn closes a kept-alive connection that stays idle after an answer, but a fresh
connection that sends nothing, or sends its headers one byte a minute, is kept forever
(and each counts against any connection limit). So every connection gets a header
deadline: from the moment it opens, or the first byte of its next request, until its
request line and headers are complete. Past it the server answers ``408`` and closes.
Bodies have their own limits, enforced where the application reads them (``.uploads``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["GuardedH11Protocol", "protocol_for"]

_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"connection: close\r\ncontent-length: 42\r\n\r\n"
                   b"the request headers took too long to send\n")


class GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request headers are not complete in time."""

    header_seconds: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # (part of) the next request's headers: their clock runs from the first byte
        else:
            self._disarm()  # headers complete (the body has its own limits) or the connection is done

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # an idle kept-alive connection is uvicorn's keep-alive timer's to close

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:  # nothing of ours in flight: say why before closing
            self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()


def protocol_for(header_seconds: float) -> type[GuardedH11Protocol]:
    """A protocol class with this header deadline (uvicorn instantiates the class it is given)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_seconds": float(header_seconds)})
