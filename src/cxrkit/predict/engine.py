"""The batch engine: read films ahead in threads, run them through a runner in batches, one row per file.

Decoding (PNG ~16 ms, DICOM up to ~0.5 s) overlaps with the network: a small thread
pool decodes upcoming files while the main thread runs the current batch (OpenCV and
the DICOM codecs release the GIL). At most a few batches are in flight, so memory
stays flat whether there are 10 files or 100,000. Each file yields exactly one row,
in input order; a file that fails costs its own row and nothing else.

:func:`predict_files` drives a :class:`~cxrkit.predict.Runner` (batched model work);
:func:`map_files` drives a :class:`~cxrkit.predict.FileTask` (per-file work such as
conversion). Both share one read-ahead loop and one way of writing error rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CxrkitError, InvalidArgument, UnreadableImage
from ..io import read_image
from .runner import FileTask, Runner

__all__ = ["RunSummary", "Prepared", "error_reason", "score_group", "predict_files", "map_files"]

log = logging.getLogger(__name__)

RowSink = Callable[[list[dict[str, Any]]], None]
#: a film after ``runner.prepare``: the model input and the extra row fields
Prepared = tuple[np.ndarray, dict[str, Any]]


@dataclass
class RunSummary:
    """Counts of one run; ``failed`` files have error rows."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def add(self, name: str, fields: dict[str, Any], error: str | None, empty: dict[str, Any]) -> dict[str, Any]:
        """The row of one finished file (``file``, ``status``, ``error``, then ``fields`` or ``empty``), counted."""
        row: dict[str, Any] = {"file": name, "status": "error" if error else "ok", "error": error or ""}
        if error:
            row.update(empty)
            self.failed += 1
            self.errors.append((name, error))
        else:
            row.update(fields)
            self.ok += 1
        return row


def error_reason(exc: BaseException) -> str:
    """The text of a file's error row: a cxrkit error's message, else the exception named."""
    if isinstance(exc, UnreadableImage):
        return exc.reason
    if isinstance(exc, CxrkitError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _settle(name: str, future: Future) -> tuple[str, Any, str | None]:
    try:
        return name, future.result(), None
    except Exception as exc:
        log.debug("cannot process %s", name, exc_info=True)
        return name, None, error_reason(exc)


def _read_ahead(files: Iterable[str | os.PathLike[str]], work: Callable[[Path], Any], *, workers: int, window: int,
                skip: set[str], summary: RunSummary) -> Generator[tuple[str, Any, str | None], None, None]:
    """``(name, work(file), None)`` or ``(name, None, error)`` for each file not in ``skip``, in input
    order, with at most ``window`` files submitted to ``workers`` threads ahead of the consumer."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cxr-read") as pool:
        try:
            pending: deque[tuple[str, Future]] = deque()
            for file in files:
                name = str(file)
                if name in skip:
                    summary.skipped += 1
                    continue
                pending.append((name, pool.submit(work, Path(file))))
                while len(pending) >= window:
                    yield _settle(*pending.popleft())
            while pending:
                yield _settle(*pending.popleft())
        except BaseException:
            # Ctrl-C, a full disk, the consumer closing us: drop the work queued ahead instead
            # of finishing it (up to 2 batches of DICOMs, seconds) before the error surfaces.
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def score_group(runner: Runner, group: Sequence[tuple[str, Prepared | None, str | None]]
                ) -> list[tuple[str, dict[str, Any], str | None]]:
    """``(name, fields, error)`` of each ``(name, prepared, error)`` after one ``predict_batch`` over
    the prepared films: ``fields`` are the prepared fields then one float per ``runner.columns``.

    A film that failed to prepare keeps its error; if ``predict_batch`` fails (e.g. out of
    memory), every film of the group gets that error: the files are fine, the batch was not.
    Shared by the in-process engine and the cluster one, so both score and fail alike.
    """
    ready = [(i, prepared[0]) for i, (_, prepared, _) in enumerate(group) if prepared is not None]
    scores: dict[int, np.ndarray] = {}
    batch_error = None
    if ready:
        try:
            out = runner.predict_batch(np.stack([x for _, x in ready]))
            scores = {i: out[k] for k, (i, _) in enumerate(ready)}
        except Exception as exc:
            log.debug("batch failed", exc_info=True)
            batch_error = f"model failed on this batch: {error_reason(exc)}"
    done = []
    for i, (name, prepared, error) in enumerate(group):
        error = error or (batch_error if i not in scores else None)
        fields = {} if error or prepared is None else {**prepared[1], **dict(zip(runner.columns, map(float, scores[i]), strict=True))}
        done.append((name, fields, error))
    return done


def predict_files(
    files: Iterable[str | os.PathLike[str]],
    runner: Runner,
    *,
    batch_size: int = 8,
    workers: int = 1,
    on_rows: RowSink | None = None,
    skip: set[str] | None = None,
    summary: RunSummary | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one row per file: ``file``, ``status`` (ok|error), ``error``, the fields ``prepare``
    returned, then one value per ``runner.columns`` (NaN on error rows).

    ``skip`` holds file names already done (resume); ``on_rows`` receives each finished
    group of rows (the writer hooks in here); ``summary`` is filled as rows complete.
    """
    if batch_size < 1:
        raise InvalidArgument("batch size must be at least 1")
    summary = summary if summary is not None else RunSummary()
    started = time.perf_counter()
    group: list[tuple[str, Prepared | None, str | None]] = []
    empty = {column: float("nan") for column in runner.columns}

    def flush() -> list[dict[str, Any]]:
        rows = [summary.add(name, fields, error, empty) for name, fields, error in score_group(runner, group)]
        group.clear()
        summary.seconds = time.perf_counter() - started
        if on_rows is not None:
            on_rows(rows)
        return rows

    def load(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
        return runner.prepare(read_image(path))

    ahead = _read_ahead(files, load, workers=workers, window=batch_size * 2 + workers, skip=skip or set(),
                        summary=summary)
    with closing(ahead):
        for item in ahead:
            group.append(item)
            if sum(x is not None for _, x, _ in group) >= batch_size:
                yield from flush()
        if group:
            yield from flush()
    summary.seconds = time.perf_counter() - started


def map_files(
    files: Iterable[str | os.PathLike[str]],
    task: FileTask | Callable[[Path], dict[str, Any]],
    *,
    workers: int = 1,
    on_rows: RowSink | None = None,
    skip: set[str] | None = None,
    summary: RunSummary | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one row per file, in input order: ``file``, ``status``, ``error``, then the fields
    ``task(path)`` returned; ``workers`` files are processed at once in threads. ``skip``,
    ``on_rows`` and ``summary`` are as for :func:`predict_files`."""
    summary = summary if summary is not None else RunSummary()
    started = time.perf_counter()
    ahead = _read_ahead(files, task, workers=workers, window=2 * workers + 1, skip=skip or set(), summary=summary)
    with closing(ahead):
        for name, fields, error in ahead:
            row = summary.add(name, fields, error, {})
            summary.seconds = time.perf_counter() - started
            if on_rows is not None:
                on_rows([row])
            yield row
    summary.seconds = time.perf_counter() - started
