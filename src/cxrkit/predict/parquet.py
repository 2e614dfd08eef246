"""Streaming, resumable Parquet output: a folder of part files that any Parquet reader opens as one table.

A Parquet file is only readable once its footer is written, and it cannot be appended
to; one file written for hours would be lost whole to a kill. So the output is a
*dataset folder* (``embeddings.parquet/part-00000.parquet``, ...): rows are buffered and
each flush writes one complete part file under a temporary name, then renames it into
place (:func:`cxrkit.atomic.atomic_path`). A reader never sees a half-written part;
a kill loses only the rows buffered since the last flush (at most ``flush_rows`` rows or
``flush_seconds`` of work), and ``resume=True`` reads the ``file`` column of the parts
present, skips those files and writes new parts after them. pyarrow, pandas, Polars,
DuckDB and Spark all read such a folder as one table.

``vector`` names columns that are packed into one ``vector`` column of fixed-size
float32 lists (an embedding per row; null on error rows), the layout FAISS and NumPy
take without copying. The schema carries the writer's ``metadata`` (which model, which
layer), so a resumed run with another model is refused instead of mixing vectors.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, remove_temporaries
from ..errors import InvalidArgument, InvalidInput, MissingDependency, OutputError
from .writer import BASE_COLUMNS, OutputExists, RowWriter

__all__ = ["ParquetSink", "METADATA_KEY", "part_files"]

#: schema metadata key holding the JSON description of the columns and the writer's metadata
METADATA_KEY = b"cxrkit"
_PART = re.compile(r"^part-(\d{5,})\.parquet$")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("pyarrow", "Parquet output") from None
    return pa, pq


def _text(value: Any) -> str:
    """A cell as the CSV writer renders it (empty for None/NaN, floats to 6 significant digits)."""
    return str(RowWriter._cell(value))


def part_files(folder: Path) -> list[Path]:
    """The complete part files of a dataset folder, in write order."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _PART.match(p.name)), key=_part_number)


def _part_number(part: Path) -> int:
    """The write order of a part file (its name matched :data:`_PART`, as every listed part's did)."""
    found = _PART.match(part.name)
    assert found is not None, part.name
    return int(found.group(1))


class ParquetSink:
    """Writes rows to a Parquet dataset folder; the same interface as :class:`~cxrkit.predict.RowWriter`.

    ``columns`` are the row's columns after ``file``/``status``/``error``; those listed in
    ``vector`` become one float32 list column, those in ``text`` strings (e.g. the
    orientation columns), the others float64 (NaN on error rows). The types are fixed up
    front, so every part has the same schema whatever its rows hold.
    """

    def __init__(self, path: str | Path | None, columns: Sequence[str], *, resume: bool = False, overwrite: bool = False,
                 vector: Sequence[str] = (), text: Sequence[str] = (), metadata: dict[str, Any] | None = None,
                 flush_rows: int = 2048, flush_seconds: float = 30.0):
        if path is None or hasattr(path, "write"):
            raise InvalidArgument("Parquet output needs a folder path (it is written as part files), not a stream")
        self.pa, self.pq = _pyarrow()
        self.path = Path(path)
        self.vector = list(vector)
        self.text = [c for c in columns if c in set(text) and c not in BASE_COLUMNS]
        self.scalars = [c for c in columns if c not in set(self.vector) | set(self.text) | set(BASE_COLUMNS)]
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.described = {"columns": list(BASE_COLUMNS) + self.text + self.scalars, "vector": len(self.vector),
                          **(metadata or {})}
        fields = [self.pa.field(c, self.pa.string()) for c in list(BASE_COLUMNS) + self.text]
        fields += [self.pa.field(c, self.pa.float64()) for c in self.scalars]
        if self.vector:
            fields.append(self.pa.field("vector", self.pa.list_(self.pa.float32(), len(self.vector))))
        self.schema = self.pa.schema(fields, metadata={METADATA_KEY: json.dumps(self.described, sort_keys=True).encode()})
        self.done: set[str] = set()
        self._rows: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        if self.path.exists() and not self.path.is_dir():
            raise InvalidArgument(f"{self.path} is a file; Parquet output is a folder of part files, so name a new folder")
        parts = part_files(self.path)
        if parts and not (resume or overwrite):
            raise OutputExists(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            remove_temporaries(self.path, "part-*")  # a part a kill interrupted
            if parts and overwrite and not resume:
                for part in parts:
                    part.unlink()
                parts = []
        except OSError as exc:
            self._fail(exc)
        for part in parts:
            self.done.update(self._read_done(part))
        self._next = _part_number(parts[-1]) + 1 if parts else 0

    def _read_done(self, part: Path) -> list[str]:
        try:
            schema = self.pq.read_schema(part)
            described = json.loads((schema.metadata or {}).get(METADATA_KEY, b"null"))
            files = self.pq.read_table(part, columns=["file"]).column("file").to_pylist()
        except Exception as exc:  # a damaged part: name it rather than guess what it held
            raise InvalidInput(f"{part}: not a readable part file ({exc}); move it away and resume again") from None
        if described != self.described:
            raise InvalidInput(f"{self.path} was written with other columns, model or layer ({part.name}); "
                              "write to a new folder or overwrite it")
        return files

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Buffer rows; write a part once ``flush_rows`` rows or ``flush_seconds`` have gathered."""
        rows = list(rows)
        for row in rows:
            try:
                str(row["file"]).encode("utf-8")
            except UnicodeEncodeError:  # a name read from disk with undecodable bytes (surrogate escapes)
                raise InvalidInput(f"{os.fsencode(row['file'])!r}: this file name is not UTF-8, which a Parquet "
                                  "string column cannot hold; write CSV or JSON Lines (they keep the exact bytes), "
                                  "or rename the file") from None
        self._rows.extend(rows)
        if len(self._rows) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _table(self, rows: list[dict[str, Any]]):
        pa = self.pa
        arrays = [pa.array([_text(row.get(c)) for row in rows], pa.string()) for c in list(BASE_COLUMNS) + self.text]
        for column in self.scalars:
            values = [row.get(column) for row in rows]
            if any(isinstance(v, str) and v for v in values):  # a text column not declared as one: never NaN it silently
                raise InvalidArgument(f"column {column!r} holds text; the Parquet writer must list it in text=")
            arrays.append(pa.array([float(v) if isinstance(v, (int, float)) else math.nan for v in values], pa.float64()))
        if self.vector:
            vectors = [None if row.get("status") != "ok" else [row[c] for c in self.vector] for row in rows]
            arrays.append(pa.array(vectors, self.schema.field("vector").type))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def flush(self) -> None:
        """Write the buffered rows as one complete part file (nothing when the buffer is empty)."""
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        table = self._table(self._rows)
        target = self.path / f"part-{self._next:05d}.parquet"
        try:
            with atomic_path(target) as temp:
                self.pq.write_table(table, temp, compression="zstd")
        except OSError as exc:
            self._fail(exc)
        self._rows.clear()
        self._next += 1

    def _fail(self, exc: OSError) -> None:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise OutputError(self.path, f"{reason}; the part files written before this are kept: "
                                     "fix the cause, then resume") from None

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is None or not issubclass(kind, OutputError):  # Ctrl-C, a failed batch: keep the rows
            self.close()
