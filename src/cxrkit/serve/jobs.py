"""Run model work off the event loop, one job at a time, behind a bounded queue.

The event loop only moves bytes; inference runs in one worker thread, which has the films
decoded by worker processes a window ahead of the model (:mod:`.decode`). One thread,
because explanations switch a shared model's gradients on and off while they run, and
because torch already spreads one job over the CPU's cores. The queue is bounded: when
``capacity`` jobs are waiting or running, the next request is refused at once with 503
and a ``Retry-After`` estimated from recent job times, instead of hanging. A job whose
client went away before it started is dropped, not run.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import ServerBusy

__all__ = ["JobQueue"]

T = TypeVar("T")


class JobQueue:
    """A single worker thread with at most ``capacity`` jobs queued or running."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxr-serve-model")
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False
        self._mean_seconds = 1.0  # until measured; exponentially weighted afterwards
        self.running_since: float | None = None

    @property
    def pending(self) -> int:
        """Jobs waiting or running now."""
        return self._pending

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue's length times the mean job time."""
        return max(1, min(120, math.ceil(self._mean_seconds * max(1, self._pending))))

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        started = time.perf_counter()
        self.running_since = time.time()
        try:
            return fn(*args)
        finally:
            self.running_since = None
            took = time.perf_counter() - started
            self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * took

    def _release(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def submit(self, fn: Callable[..., T], *args: Any) -> Future:
        """Queue ``fn(*args)`` or raise :class:`ServerBusy`; the future settles when it has run."""
        with self._lock:
            if self._closed:
                raise ServerBusy("the server is shutting down; retry on its next start", retry_after=30)
            if self._pending >= self.capacity:
                raise ServerBusy(f"the server is busy ({self._pending} jobs queued); retry in a few seconds",
                                 retry_after=self.retry_after())
            self._pending += 1
        try:
            future = self._pool.submit(self._run, fn, args)
        except RuntimeError:  # the pool shut down between the check and the submit
            with self._lock:
                self._pending -= 1
            raise ServerBusy("the server is shutting down; retry on its next start", retry_after=30) from None
        future.add_done_callback(self._release)
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` in the worker; cancelled before it starts, it never runs."""
        future = self.submit(fn, *args)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def close(self) -> None:
        """Refuse new jobs and wait for the queued ones to finish (graceful shutdown)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True)
