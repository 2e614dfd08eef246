"""Who may send a body now: a bounded number of upload requests and a budget of bytes in memory.

Uploads live in RAM until their answer is sent (they never touch disk), so the memory a
server needs is the sum of the uploads it holds. Two counters bound it, both checked
*before* a body is read: at most ``slots`` upload requests in flight (the job queue's
length; reading, decoding, waiting or running), and at most ``budget`` bytes of uploads
held by all of them together. A request with a ``Content-Length`` reserves it up front;
a chunked one reserves as its bytes arrive. Whatever does not fit is refused with 503
and ``Retry-After``: a refusal, never a reset or a swollen process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .config import MB
from .errors import ServerBusy

__all__ = ["Admission", "Ticket"]


class Admission:
    """The shared counters; :meth:`enter` hands out one :class:`Ticket` per upload request."""

    def __init__(self, slots: int, budget: int, retry_after: Callable[[], int] = lambda: 1):
        self.slots = int(slots)
        self.budget = int(budget)
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0

    @property
    def requests(self) -> int:
        """Upload requests admitted and not yet answered."""
        return self._requests

    @property
    def held_bytes(self) -> int:
        """Bytes reserved by those requests."""
        return self._bytes

    def enter(self, declared: int | None, queued: int = 0, slot: bool = True) -> Ticket:
        """A ticket for one request declaring ``declared`` bytes (None: chunked), or :class:`ServerBusy`.

        ``queued`` is the job queue's own count, so work submitted outside HTTP counts too;
        ``slot=False`` admits bytes only (a request with no model job, e.g. a CSV export).
        """
        with self._lock:
            busy = max(self._requests, queued)
            if slot and busy >= self.slots:
                raise ServerBusy(f"the server is busy ({busy} requests in flight); retry in a few seconds",
                                 retry_after=self.retry_after())
            need = declared or 0
            if self._bytes + need > self.budget:
                raise self._full()
            self._requests += int(slot)
            self._bytes += need
        return Ticket(self, need, int(slot))

    def _full(self) -> ServerBusy:
        return ServerBusy(f"the server holds its limit of {self.budget / MB:g} MB of uploads in memory; "
                          "retry in a few seconds", retry_after=self.retry_after())

    def _grow(self, n: int) -> None:
        with self._lock:
            if self._bytes + n > self.budget:
                raise self._full()
            self._bytes += n

    def _release(self, held: int, slots: int) -> None:
        with self._lock:
            self._requests -= slots
            self._bytes -= held


class Ticket:
    """One admitted request's share: bytes it reserved, released once (``with`` or :meth:`release`)."""

    def __init__(self, admission: Admission, held: int, slots: int = 1):
        self._admission = admission
        self.held = held
        self._slots = slots
        self._open = True

    def cover(self, total: int) -> None:
        """Make sure ``total`` bytes of this request are reserved (chunked bodies grow as they arrive)."""
        if total > self.held:
            self._admission._grow(total - self.held)
            self.held = total

    def release(self) -> None:
        if self._open:
            self._open = False
            self._admission._release(self.held, self._slots)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
