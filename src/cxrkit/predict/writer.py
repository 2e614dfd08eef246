"""Streaming, resumable prediction output (CSV or JSON Lines).

Rows are written and flushed as each batch completes, so a killed job keeps every
finished row. ``resume=True`` reads the files already present, drops a half-written
last line left by the kill, and appends only new rows: nothing redone, nothing lost,
nothing duplicated.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import CxrkitError

__all__ = ["PredictionWriter", "FORMATS", "BASE_COLUMNS"]

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


class PredictionWriter:
    """Writes prediction rows to ``path`` (or stdout when ``None``) and knows which files are done."""

    def __init__(
        self,
        path: str | Path | None,
        columns: Sequence[str],
        fmt: str = "csv",
        *,
        resume: bool = False,
        overwrite: bool = False,
    ):
        if fmt not in FORMATS:
            raise CxrkitError(f"output format must be one of {FORMATS}, got {fmt!r}")
        self.fmt = fmt
        self.columns = list(BASE_COLUMNS) + list(columns)
        self.path = Path(path) if path is not None else None
        self.done: set[str] = set()
        if self.path is None:
            if resume:
                raise CxrkitError("--resume needs --output: there is no file to resume from on stdout")
            self._handle: TextIO = sys.stdout
            self._owns = False
            self._start(write_header=True)
            return
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise CxrkitError(f"{self.path} already exists; pass --resume to continue it or --overwrite to replace it")
        if exists and resume:
            _truncate_partial_line(self.path)
            self.done = self._read_done()
            self._handle = open(self.path, "a", newline="", encoding="utf-8")
            self._owns = True
            self._start(write_header=self.path.stat().st_size == 0)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", newline="", encoding="utf-8")
            self._owns = True
            self._start(write_header=True)

    def _start(self, write_header: bool) -> None:
        self._csv = csv.DictWriter(self._handle, fieldnames=self.columns, extrasaction="raise") if self.fmt == "csv" else None
        if self._csv is not None and write_header:
            self._csv.writeheader()
            self._handle.flush()

    def _read_done(self) -> set[str]:
        assert self.path is not None
        done: set[str] = set()
        with open(self.path, newline="", encoding="utf-8") as handle:
            if self.fmt == "csv":
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    return done
                if header != self.columns:
                    raise CxrkitError(
                        f"{self.path} has different columns than this run (another model or version?); "
                        "use a new --output or --overwrite"
                    )
                done.update(row[0] for row in reader if row)
            else:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            done.add(json.loads(line)["file"])
                        except (json.JSONDecodeError, KeyError, TypeError):
                            raise CxrkitError(f"{self.path}:{number}: not a prediction row; cannot resume from it") from None
        return done

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, float):
            return "" if math.isnan(value) else format(value, ".6g")
        return "" if value is None else value

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows and flush, so they survive a kill of the process."""
        for row in rows:
            if self._csv is not None:
                self._csv.writerow({key: self._cell(row.get(key)) for key in self.columns})
            else:
                record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                self._handle.write(json.dumps(record, allow_nan=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._owns and not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

