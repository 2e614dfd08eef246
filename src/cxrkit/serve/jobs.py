"""Run model work off the event loop, one job at a time, behind a bounded queue.

The event loop only moves bytes; inference runs in one worker thread, which has the films
decoded by worker processes a window ahead of the model (:mod:`.decode`). One thread,
because explanations switch a shared model's gradients on and off while they run, and
because torch already spreads one job over the CPU's cores. The queue is bounded: when
``capacity`` jobs are waiting or running, the next request is refused at once with 503
and a ``Retry-After`` estimated from recent job times, instead of hanging. A job whose
client went away before it started is dropped, not run.

Requests of one film each would leave the model scoring batches of one while other
clients wait, so *batchable* jobs (:meth:`JobQueue.submit_batch`: predictions over the
same network and options) that meet in the queue run as one job: the worker takes the
first, then for up to ``window`` seconds gathers the queued jobs with the same key until
they hold ``max_films`` films, and hands them together to their function, which answers
each one separately. It stops gathering at once when a job of another kind waits, so an
explanation is never held up by more than one batch; other jobs still run alone.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ServerBusy

__all__ = ["JobQueue"]

T = TypeVar("T")

#: ``run_many(items)``: one result (or exception instance) per item, in order
RunMany = Callable[[Sequence[Any]], Sequence[Any]]


@dataclass
class _Job:
    future: Future
    fn: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    key: Hashable | None = None  # set for batchable jobs
    item: Any = None
    films: int = 1
    run_many: RunMany | None = field(default=None, repr=False)


class JobQueue:
    """A single worker thread with at most ``capacity`` jobs queued or running.

    ``window`` (seconds) and ``max_films`` bound how batchable jobs are gathered; a
    ``window`` of 0 still merges the ones already queued, but never waits for more.
    """

    def __init__(self, capacity: int, window: float = 0.0, max_films: int = 8):
        self.capacity = int(capacity)
        self.window = float(window)
        self.max_films = max(1, int(max_films))
        self._queue: deque[_Job] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # one lock: a job is never queued after close
        self._pending = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._mean_seconds = 1.0  # until measured; exponentially weighted afterwards
        self.running_since: float | None = None
        self.batches = 0  # jobs run as part of a batch of two or more (for tests and logs)

    @property
    def pending(self) -> int:
        """Jobs waiting or running now."""
        return self._pending

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue's length times the mean job time."""
        return max(1, min(120, math.ceil(self._mean_seconds * max(1, self._pending))))

    # --- submitting -------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> Future:
        with self._cond:
            if self._closed:
                raise ServerBusy("the server is shutting down; retry on its next start", retry_after=30)
            if self._pending >= self.capacity:
                raise ServerBusy(f"the server is busy ({self._pending} jobs queued); retry in a few seconds",
                                 retry_after=self.retry_after())
            self._pending += 1
            job.future.add_done_callback(self._release)  # not done yet: runs later, outside this lock
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="cxr-serve-model", daemon=True)
                self._thread.start()
            self._queue.append(job)
            self._cond.notify_all()
        return job.future

    def _release(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def submit(self, fn: Callable[..., T], *args: Any) -> Future:
        """Queue ``fn(*args)`` to run alone, or raise :class:`ServerBusy`; the future settles when it has run."""
        return self._enqueue(_Job(Future(), fn=fn, args=args))

    def submit_batch(self, key: Hashable, item: Any, run_many: RunMany, films: int = 1) -> Future:
        """Queue ``item`` to run with the queued items of the same ``key`` as ``run_many(items)``.

        The future settles with the item's own result (or its exception), or every item's
        exception when ``run_many`` raises. ``films`` is what the item weighs against ``max_films``.
        """
        return self._enqueue(_Job(Future(), key=key, item=item, films=max(1, int(films)), run_many=run_many))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` in the worker; cancelled before it starts, it never runs."""
        return await self._wait(self.submit(fn, *args))

    async def run_batch(self, key: Hashable, item: Any, run_many: RunMany, films: int = 1) -> Any:
        """Await :meth:`submit_batch`'s result; cancelled before it starts, the item never runs."""
        return await self._wait(self.submit_batch(key, item, run_many, films))

    @staticmethod
    async def _wait(future: Future) -> Any:
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    # --- the worker ---------------------------------------------------------------------------

    def _next(self) -> list[_Job] | None:
        """The next job (alone) or batch of jobs to run, with their futures marked running; None: closed."""
        with self._cond:
            while True:
                while not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                job = self._queue.popleft()
                if job.future.set_running_or_notify_cancel():  # False: its client left while it waited
                    break
            if job.key is None:
                return [job]
            batch, films = [job], job.films
            deadline = time.monotonic() + self.window
            while films < self.max_films:
                for other in list(self._queue):
                    if films >= self.max_films:
                        break
                    if other.key == job.key:
                        self._queue.remove(other)
                        if other.future.set_running_or_notify_cancel():
                            batch.append(other)
                            films += other.films
                left = deadline - time.monotonic()
                if films >= self.max_films or left <= 0 or self._closed or self._queue:
                    break  # full, out of time, or another kind of job is waiting its turn
                self._cond.wait(left)
            return batch

    def _loop(self) -> None:
        while (batch := self._next()) is not None:
            started = time.perf_counter()
            self.running_since = time.time()
            try:
                self._execute(batch)
            finally:
                self.running_since = None
                took = (time.perf_counter() - started) / len(batch)
                self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * took

    def _execute(self, batch: list[_Job]) -> None:
        head = batch[0]
        try:
            if head.run_many is None:
                results: Sequence[Any] = [head.fn(*head.args)]  # type: ignore[misc]
            else:
                if len(batch) > 1:
                    self.batches += len(batch)
                results = head.run_many([job.item for job in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} jobs gave {len(results)} results")
        except BaseException as exc:  # every job of the batch learns why
            for job in batch:
                job.future.set_exception(exc)
            return
        for job, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def close(self) -> None:
        """Refuse new jobs and wait for the queued ones to finish (graceful shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
