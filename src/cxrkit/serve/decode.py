"""Decode uploads in worker processes, each film under a hard time limit.

Decoding a hostile file can take minutes (a 1.7 KB JPEG-LS DICOM whose codestream
claims 16000 x 16000 pixels takes ~26 s), and some decoders (pylibjpeg) hold the GIL
while they work, so decoding in a thread of the server freezes the event loop and
``/healthz`` with it. Here each film is decoded by ``cxrkit.io.read_image`` in a separate
process: the server's own threads never wait on a decoder's lock, and a film that
takes longer than ``seconds`` has its worker killed and replaced, and becomes an error
row. A request whose client went away stops waiting and kills its running decode.

Workers come from the ``forkserver`` context (never ``fork``: the server has torch's
threads running) with this module preloaded, so a replacement starts in milliseconds
(importing it imports torch, through the ``cxrkit.serve`` package, once in the fork
server instead of seconds in each worker). A worker's clock starts when it reports
ready, so its start-up never counts against a film. One thread per worker talks to it;
the pool starts with the server (:meth:`DecodePool.start`) or on first use.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
import warnings
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import CxrkitError, RunFailed, UnreadableImage
from ..io import XrayImage
from .memory import MemoryFiles
from .uploads import Upload

__all__ = ["DecodePool", "Decoded", "decode_upload"]

log = logging.getLogger("cxrkit.serve")

#: what a film decodes to: the image, or the sentence of its error row
Decoded = XrayImage | str
_POLL = 0.05
_START_SECONDS = 120.0  # a fresh fork server imports torch once; a busy machine may take a minute


def decode_upload(folder: str, upload: Upload) -> XrayImage:
    """The worker's job: the upload's bytes through ``read_image``, as ``cxr predict`` reads a file."""
    from ..io import read_image

    files = MemoryFiles(Path(folder))
    with files.paths([upload]) as (path,):
        return read_image(path)


def _reason(exc: BaseException) -> str:
    """The error row's sentence, as ``cxrkit.predict.error_reason`` writes it (not imported here:
    ``cxrkit.predict`` loads the model code, which a decoder process has no use for)."""
    if isinstance(exc, UnreadableImage):
        return exc.reason
    if isinstance(exc, CxrkitError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _worker(conn: Any, folder: str, target: Any) -> None:
    """Say ready, then decode one upload per message until the pipe closes; answer ``(ok, image-or-reason)``.

    Nothing a decoder library logs or warns leaves this process: third-party loggers and
    warnings can quote header values (patient names), and the one sentence a film needs
    travels back over the pipe instead.
    """
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    conn.send("ready")
    while True:
        try:
            upload = Upload(conn.recv(), conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            answer = (True, target(folder, upload))
        except MemoryError:
            answer = (False, "the film needs more memory to decode than the server allows")
        except Exception as exc:
            answer = (False, _reason(exc))
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


class _Worker:
    """One decoder process and the parent's end of its pipe."""

    def __init__(self, context: Any, folder: str, target: Any):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, folder, target), daemon=True,
                                       name="cxr-serve-decode")
        self.process.start()
        child.close()
        try:
            if not self.conn.poll(_START_SECONDS) or self.conn.recv() != "ready":
                raise OSError("no ready message")
        except (EOFError, OSError):
            self.stop(kill=True)
            raise RunFailed("a decoder process did not start; see the server's log") from None

    def stop(self, kill: bool = False) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        if kill:
            self.process.kill()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class DecodePool:
    """``workers`` decoder processes; :meth:`decode_ahead` turns uploads into :data:`Decoded` values."""

    def __init__(self, workers: int = 2, seconds: float = 30.0, target: Any = decode_upload):
        self.workers = int(workers)
        self.seconds = float(seconds)
        self._target = target
        self._files = MemoryFiles()
        self._local = threading.local()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        self._context: Any = None
        self.replaced = 0  # workers killed for running over time or for a client that left

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                if "forkserver" in multiprocessing.get_all_start_methods():
                    self._context = multiprocessing.get_context("forkserver")
                    self._context.set_forkserver_preload([__name__])
                else:  # Windows: each worker starts from scratch (seconds, outside a film's clock)
                    self._context = multiprocessing.get_context("spawn")
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="cxr-serve-decode")
            return self._threads

    def start(self) -> None:
        """Start the fork server and the workers in the background, so the first films wait for neither."""
        pool = self._pool()
        for _ in range(self.workers):
            pool.submit(self._ready)

    def _ready(self) -> None:
        with contextlib.suppress(CxrkitError):
            self._worker()
        time.sleep(0.2)  # hold this thread briefly so the next start lands on another one

    def _worker(self) -> _Worker:
        worker = getattr(self._local, "worker", None)
        if worker is not None and not worker.process.is_alive():  # died between films
            self._replace(worker)
            worker = None
        if worker is None:
            folder = str(self._files.folder())
            worker = _Worker(self._context, folder, self._target)
            self._local.worker = worker
            with self._lock:
                self._all.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        worker.stop(kill=True)
        self._local.worker = None
        with self._lock:
            if worker in self._all:  # (close() may have taken the list already)
                self._all.remove(worker)
            self.replaced += 1

    def decode(self, upload: Upload, cancelled: threading.Event | None = None) -> Decoded:
        """Decode one upload in this thread's worker (blocking); the error sentence if it fails."""
        if cancelled is not None and cancelled.is_set():
            return "the request was cancelled"
        try:
            worker = self._worker()
        except CxrkitError as exc:
            return str(exc)
        try:
            worker.conn.send(upload.name)
            worker.conn.send_bytes(upload.data)  # the buffer as is: pickling would copy a large upload
            deadline = time.monotonic() + self.seconds
            while not worker.conn.poll(_POLL):
                if cancelled is not None and cancelled.is_set():
                    self._replace(worker)
                    return "the request was cancelled"
                if time.monotonic() > deadline:
                    self._replace(worker)
                    return (f"decoding took longer than the server's limit of {self.seconds:g} s per film "
                            "(a damaged or hostile file?)")
            ok, value = worker.conn.recv()
        except (EOFError, OSError):  # the worker died (killed by the system for memory, a decoder crash)
            self._replace(worker)
            return "the decoder stopped on this film (out of memory or a decoder crash)"
        return value if ok else str(value)

    def submit(self, upload: Upload, cancelled: threading.Event | None = None) -> Future:
        """Queue one decode; the future's result is the image or its error sentence."""
        return self._pool().submit(self.decode, upload, cancelled)

    def decode_ahead(self, uploads: Sequence[Upload], window: int,
                     cancelled: threading.Event | None = None) -> Iterator[Decoded]:
        """Each upload decoded, in order, with at most ``window`` decodes queued or running ahead
        of the consumer: films decode while the model scores the previous ones, and only a
        window's worth of decoded pixels is in memory at once."""
        return self.decode_each([(upload, cancelled) for upload in uploads], window)

    def decode_each(self, work: Sequence[tuple[Upload, threading.Event | None]], window: int) -> Generator[Decoded, None, None]:
        """:meth:`decode_ahead` with a ``cancelled`` event per upload (films of several requests
        decoded together: one client leaving kills only its own films' decodes)."""
        pending: deque[Future] = deque()
        try:
            for upload, cancelled in work:
                pending.append(self.submit(upload, cancelled))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def decode_now(self, uploads: Sequence[Upload], cancelled: threading.Event | None = None) -> list[Decoded]:
        """Every upload decoded, in order, ``workers`` at a time (blocking; never on the event loop)."""
        return list(self.decode_ahead(uploads, max(1, len(uploads)), cancelled))

    def close(self) -> None:
        """Stop every worker and remove the private folder (server shutdown)."""
        with self._lock:
            threads, self._threads = self._threads, None
            workers, self._all = self._all, []
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.stop(kill=True)
        self._files.close()

