"""Streaming, resumable prediction output (CSV or JSON Lines).

Rows are written and flushed as each batch completes, so a killed job keeps every
finished row. ``resume=True`` reads the files already present, drops a half-written
last line left by the kill, and appends only new rows: nothing redone, nothing lost,
nothing duplicated.

A failure to write (disk full, read-only destination, file-size limit) raises one
``OutputError`` naming the file; every row written before it stays, and ``resume``
continues from there once the cause is fixed.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import InvalidArgument, InvalidInput, OutputError, OutputExists

__all__ = ["RowWriter", "OutputExists", "FORMATS", "BASE_COLUMNS", "SINKS", "open_writer"]

FORMATS = ("csv", "jsonl")
BASE_COLUMNS = ("file", "status", "error")


def _truncate_partial_line(path: Path) -> None:
    """Cut a trailing line without its newline (the row a kill interrupted)."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            handle.seek(start)
            chunk = handle.read(pos - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return
            pos = start
        handle.truncate(0)


class RowWriter:
    """Writes a run's rows (scores, ages, vectors, conversions: whatever the runner made) to ``path``
    (or stdout when ``None``) and knows which files are done.

    ``path`` may also be an open text stream (e.g. ``io.StringIO``), which is written but
    not closed: ``cxrkit.serve`` formats its CSV/JSONL answers through this one writer,
    so they are byte for byte what ``cxr predict`` writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | TextIO | None,
        columns: Sequence[str],
        fmt: str = "csv",
        *,
        resume: bool = False,
        overwrite: bool = False,
    ):
        if fmt not in FORMATS:
            raise InvalidArgument(f"output format must be one of {FORMATS}, got {fmt!r}")
        self.fmt = fmt
        self.columns = list(BASE_COLUMNS) + list(columns)
        stream = None if isinstance(path, (str, os.PathLike)) else path
        self.path = Path(path) if isinstance(path, (str, os.PathLike)) else None
        self.done: set[str] = set()
        if self.path is None:
            if resume:
                raise InvalidArgument("resuming needs an output file: there is nothing to resume from on standard output")
            self._handle: TextIO = stream if stream is not None else sys.stdout
            self._owns = False
            self._start(write_header=True)
            return
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise OutputExists(self.path)
        self._owns = False
        try:
            if exists and resume:
                _truncate_partial_line(self.path)
                self.done = self._read_done()
                self._handle = open(self.path, "a", newline="", encoding="utf-8", errors="surrogateescape")
                self._owns = True
                self._start(write_header=self.path.stat().st_size == 0)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "w", newline="", encoding="utf-8", errors="surrogateescape")
                self._owns = True
                self._start(write_header=True)
        except OSError as exc:  # read-only destination, no space for the header, a folder in the way...
            self._fail(exc)

    def _start(self, write_header: bool) -> None:
        self._csv = csv.DictWriter(self._handle, fieldnames=self.columns, extrasaction="raise") if self.fmt == "csv" else None
        if self._csv is not None and write_header:
            self._csv.writeheader()
            self._handle.flush()

    def _read_done(self) -> set[str]:
        assert self.path is not None
        done: set[str] = set()
        with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            if self.fmt == "csv":
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    return done
                if header != self.columns:
                    raise InvalidInput(
                        f"{self.path} has different columns than this run (another model or version?); "
                        "write to a new file or overwrite this one"
                    )
                done.update(row[0] for row in reader if row)
            else:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            done.add(json.loads(line)["file"])
                        except (json.JSONDecodeError, KeyError, TypeError):
                            raise InvalidInput(f"{self.path}:{number}: not a prediction row; cannot resume from it") from None
        return done

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, float):
            return "" if math.isnan(value) else format(value, ".6g")
        return "" if value is None else value

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows and flush, so they survive a kill of the process.

        The rows are rendered first and handed to the file in one ``write`` call, so Ctrl-C
        (which Python delivers between calls, never inside one) leaves only whole rows. A kill
        or a full disk can still cut the last line short; ``resume`` drops that line.
        """
        text = io.StringIO()
        if self._csv is not None:
            out = csv.DictWriter(text, fieldnames=self.columns, extrasaction="raise")
            for row in rows:
                out.writerow({key: self._cell(row.get(key)) for key in self.columns})
        else:
            for row in rows:
                record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                text.write(json.dumps(record, allow_nan=False) + "\n")
        try:
            self._handle.write(text.getvalue())
            self._handle.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        """Turn an OSError on the output into one OutputError; the rows already on disk stay."""
        if self._owns:
            try:
                self._handle.close()  # drops what could not be written; closes the file anyway
            except OSError:
                pass
        where = self.path if self.path is not None else "standard output"
        reason = exc.strerror or str(exc) or type(exc).__name__
        keep = ("; the rows written before this are kept: fix the cause, then resume the run"
                if self.path is not None else "")
        raise OutputError(where, f"{reason}{keep}") from None

    def close(self) -> None:
        if self._owns and not self._handle.closed:
            try:
                self._handle.close()
            except OSError as exc:
                self._fail(exc)

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Formats written by a sink in another module, imported only when asked for (its library is
#: an optional dependency): format -> "module:class". A sink is built as
#: ``sink(path, columns, resume=..., overwrite=..., **options)`` and offers this writer's
#: ``done``, ``path``, ``write(rows)``, ``close()`` and context-manager protocol.
SINKS: dict[str, str] = {"parquet": "cxrkit.predict.parquet:ParquetSink"}


def open_writer(path: str | os.PathLike[str] | TextIO | None, columns: Sequence[str], fmt: str = "csv", *,
                resume: bool = False, overwrite: bool = False, **options: Any) -> Any:
    """The writer for ``fmt``: :class:`RowWriter` for the text formats, the registered sink otherwise.

    ``options`` go to the sink (e.g. Parquet's ``vector`` packing); the text formats write
    every column as it is.
    """
    if fmt in SINKS:
        module, _, name = SINKS[fmt].partition(":")
        return getattr(importlib.import_module(module), name)(path, columns, resume=resume, overwrite=overwrite, **options)
    if fmt not in FORMATS:
        raise InvalidArgument(f"output format must be one of {FORMATS + tuple(SINKS)}, got {fmt!r}")
    return RowWriter(path, columns, fmt, resume=resume, overwrite=overwrite)
