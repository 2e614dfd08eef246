"""One call from paths to a finished, resumable output file: scan, read ahead, run, write.

Every streaming command (``cxr predict``, ``cxr age``, ``cxr convert``, and any new one: an
embedder, another backend, a cluster worker) is the same job: find the films, skip the ones
the output already holds, run the rest through the engine, write each finished group of
rows before the next starts. :func:`run_files` is that job; a command only chooses the
runner, the columns and the output, and shows progress.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from .engine import RowSink, RunSummary, map_files, predict_files
from .runner import FileTask, Runner
from .scan import scan_inputs
from .writer import open_writer

__all__ = ["OutputSpec", "Progress", "run_files", "output_columns"]


@dataclass(frozen=True)
class OutputSpec:
    """Where the rows go: a file (``None`` = standard output, or an open text stream), its format
    (``csv``, ``jsonl`` or a sink's, e.g. ``parquet``), and whether an existing file is continued (``resume``) or replaced."""

    path: str | os.PathLike | TextIO | None
    fmt: str = "csv"
    resume: bool = False
    overwrite: bool = False
    #: options of a format's sink (:data:`~cxrkit.predict.writer.SINKS`), e.g. Parquet's ``vector`` packing
    options: dict[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    """What :func:`run_files` reports as it goes (a progress bar, a log line, a job record)."""

    def start(self, total: int, done: int) -> None:
        """``total`` files in the run, ``done`` of them already in the output (skipped)."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows are safely written."""


def output_columns(job: Runner | FileTask) -> list[str]:
    """A job's columns after ``file, status, error``: a runner's :attr:`~Runner.film` steps' columns
    (orientation, when on), then its own (a file task's own columns say everything)."""
    film = job.film if isinstance(job, Runner) else None
    return [*(film.columns if film is not None else []), *job.columns]


def run_files(
    paths: Iterable[str | os.PathLike],
    job: Runner | FileTask,
    output: OutputSpec,
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = 8,
    workers: int = 1,
    complete: RowSink | None = None,
    progress: Progress | None = None,
    summary: RunSummary | None = None,
    engine: Callable[..., Iterator[dict[str, Any]]] | None = None,
    scanned: bool = False,
) -> RunSummary:
    """Run ``job`` over the image files under ``paths`` into ``output``; one row per file, in order.

    ``job`` is a :class:`Runner` (driven in batches of ``batch_size``) or a :class:`FileTask`
    (one call per file). ``columns`` defaults to :func:`output_columns`; ``complete(rows)``
    may fill extra columns of each group of rows before it is written. With
    ``output.resume`` the files the output already lists are skipped. Returns the counts
    (also filled into ``summary`` as the run goes, so an interrupted caller can report them).
    ``engine`` runs a runner in place of :func:`predict_files` and takes the same arguments
    (e.g. :class:`cxrkit.predict.ray_run.RayEngine`, to spread the work over a Ray cluster);
    scanning, resume, the writer and progress stay this function's. ``scanned=True`` says
    ``paths`` already are :func:`~cxrkit.predict.scan_inputs`' files (a caller that needed the
    list first, e.g. to name outputs), so a million-file folder is not walked twice.
    """
    files = list(paths) if scanned else scan_inputs(paths)
    summary = summary if summary is not None else RunSummary()
    header = list(columns) if columns is not None else output_columns(job)
    with open_writer(output.path, header, output.fmt, resume=output.resume, overwrite=output.overwrite,
                     **output.options) as writer:
        if progress is not None:
            progress.start(len(files), sum(1 for f in files if str(f) in writer.done))

        def sink(rows: list[dict[str, Any]]) -> None:
            if complete is not None:
                complete(rows)
            writer.write(rows)
            if progress is not None:
                progress.advance(len(rows))

        if isinstance(job, Runner):
            drive = engine or predict_files
            rows = drive(files, job, batch_size=batch_size, workers=workers, on_rows=sink, skip=writer.done,
                         summary=summary)
        else:
            rows = map_files(files, job, workers=workers, on_rows=sink, skip=writer.done, summary=summary)
        for _ in rows:
            pass
    return summary
