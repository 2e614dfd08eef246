"""One call for a whole embedding job: films in, one vector per film out, searchable when it is done.

``cxr embed`` is a parser over :func:`embed_to_file`. A Parquet dataset (a folder of part
files, written as the run goes) also gets its search transform, fitted once on the finished
table, so :class:`~cxrkit.embed.EmbeddingIndex` can load it straight away.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from ..predict import OutputSpec, Progress, RunSummary, run_files
from .index import write_transform
from .runner import Embedder

__all__ = ["embed_to_file"]

#: a path's format by suffix: CSV and JSON Lines files, anything else a Parquet dataset folder
_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def embed_to_file(
    paths: Iterable[str | os.PathLike[str]],
    model: str | Embedder,
    output: OutputSpec | str | os.PathLike[str],
    *,
    flush_rows: int = 2048,
    flush_seconds: float = 30.0,
    batch_size: int = 8,
    workers: int = 1,
    progress: Progress | None = None,
) -> RunSummary:
    """Embed every image under ``paths`` into ``output``: one row per file (file, status, error, vector).

    ``model`` is an :class:`Embedder` (its layer, device, precision, view) or a model name/file
    (pooled features of the whole film, CPU; ``cxr embed`` passes
    ``Embedder(name, trim=RETRIEVAL_TRIM)``, the search view, which finds turned and cropped
    copies far more often: docs/representations.md). ``output`` is a path: ``.csv`` or ``.jsonl`` (one column per
    component), anything else a Parquet dataset folder (e.g. ``embeddings.parquet``), which
    writes a part file every ``flush_rows`` rows or ``flush_seconds`` seconds (a kill loses at
    most that much work); or an :class:`OutputSpec` to resume or overwrite. Film steps belong
    to the embedder (``Embedder(name, film=FilmSteps(...))``), as to every runner.
    """
    embedder = model if isinstance(model, Embedder) else Embedder(model)
    if isinstance(output, OutputSpec):
        spec = output
    else:
        spec = OutputSpec(output, _FORMATS.get(Path(output).suffix.lower(), "parquet"))
    if spec.fmt == "parquet":
        spec = replace(spec, options={"vector": embedder.columns, "text": embedder.film.columns,
                                      "metadata": embedder.metadata(), "flush_rows": flush_rows,
                                      "flush_seconds": flush_seconds, **spec.options})
    summary = run_files(paths, embedder, spec, batch_size=batch_size, workers=workers, progress=progress)
    if spec.fmt == "parquet" and (summary.ok or spec.resume) and isinstance(spec.path, (str, os.PathLike)):
        write_transform(Path(spec.path), embedder)  # the search transform, fitted once on the finished table
    return summary
