"""One duplicate search over folders of films and/or embeddings tables, into a report folder.

Each input is one dataset: a folder (or file) of films, embedded here with the same engine as
``cxr embed`` into ``REPORT/embeddings/NAME.parquet`` (resumable: a second run over the same
folder embeds only new films), or an embeddings table ``cxr embed`` wrote earlier. All inputs
must come from one model's weights and layer, since vectors of two models cannot be compared.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgument, InvalidInput, MissingFile
from ..models import DEFAULT_MODEL
from ..predict import OutputSpec, Progress, run_files
from ..predict.parquet import part_files
from .alter import learned_transform
from .duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateReport,
    find_duplicates,
    pixel_hashes,
)
from .duplicates_report import film_labels, write_report
from .index import EmbeddingIndex, read_embeddings
from .runner import Embedder
from .transform import VectorTransform

__all__ = ["duplicates_job", "is_embeddings_table"]

log = logging.getLogger(__name__)

#: what must agree between the tables of one search
_SAME = ("weights_sha256", "layer", "dim", "trim")


def is_embeddings_table(path: str | Path) -> bool:
    """Whether ``path`` is a table ``cxr embed`` wrote (a Parquet file or a folder of part files) rather than films."""
    path = Path(path)
    return bool(part_files(path)) if path.is_dir() else path.suffix.lower() == ".parquet"


def _names(paths: Sequence[Path]) -> list[str]:
    """One short dataset name per input (its file or folder name), made unique with a counter."""
    out: list[str] = []
    for path in paths:
        base = path.name.removesuffix(".parquet") or "input"
        name, n = base, 1
        while name in out:
            n += 1
            name = f"{base}-{n}"
        out.append(name)
    return out


def _embed(path: Path, table: Path, embedder: Embedder, batch_size: int, workers: int, progress: Progress | None) -> Path:
    options = {"vector": embedder.columns, "text": embedder.film.columns, "metadata": embedder.metadata()}
    summary = run_files([path], embedder, OutputSpec(table, "parquet", resume=True, options=options),
                        batch_size=batch_size, workers=workers, progress=progress)
    if summary.failed:
        log.warning("%s: %d films could not be read and are left out of the search", path, summary.failed)
    return table


def _transform(files: list[str], vectors: np.ndarray, meta: dict[str, Any], embedder: Embedder | None):
    """The learned transform (altered copies of some films, embedded as the inputs were), else plain whitening."""
    if embedder is None:
        film = meta.get("film") or {}
        if film.get("clean") or film.get("orientation_model") or not meta.get("model"):
            log.info("the tables were embedded with film steps or by an unnamed model; whitening without altered copies")
            return "whiten"
        try:
            embedder = Embedder.for_table({"layer": "features", **meta})
        except InvalidInput as exc:
            log.info("whitening without altered copies: %s", exc)
            return "whiten"
    try:
        return learned_transform(files, vectors, embedder)
    except ValueError as exc:
        log.info("whitening without altered copies: %s", exc)
        return "whiten"


def duplicates_job(paths: Sequence[str | Path], report_dir: str | Path, *, model: str | None = None,
                   threshold: float = DEFAULT_THRESHOLD, metadata: str | Path | None = None,
                   split_column: str | None = None, group_by: str | None = None, thumbnails: int = 50,
                   hash_pixels: bool = True, device: str = "cpu", precision: str = "auto", batch_size: int = 8,
                   workers: int = 2, progress: Progress | None = None) -> DuplicateReport:
    """Find exact and near-duplicate films among ``paths`` (one dataset each) and write the report to ``report_dir``.

    Returns the :class:`~cxrkit.embed.duplicates.DuplicateReport` that ``pairs.csv`` and
    ``summary.json`` hold. ``model`` embeds the inputs that are films (tables keep their own).
    """
    inputs = [Path(p) for p in paths]
    if not inputs:
        raise InvalidArgument("give at least one folder of films or embeddings table")
    report_dir = Path(report_dir)
    embedder = None
    files: list[str] = []
    vectors: list[np.ndarray] = []
    dataset: dict[str, str] = {}
    first: dict[str, Any] | None = None
    for path, name in zip(inputs, _names(inputs), strict=True):
        if not path.exists():
            raise MissingFile(f"no such file or folder: {path}")
        table = path
        if not is_embeddings_table(path):
            embedder = embedder or Embedder(model or DEFAULT_MODEL, device=device, precision=precision)
            table = _embed(path, report_dir / "embeddings" / f"{name}.parquet", embedder, batch_size, workers, progress)
        names, found, meta = read_embeddings(table)
        first = first or meta
        if any(meta.get(key) != first.get(key) for key in _SAME):
            raise InvalidInput(f"{path} was embedded with {meta.get('model')} ({meta.get('layer')}, trim {meta.get('trim')}), the "
                              f"first input with {first.get('model')} ({first.get('layer')}, trim {first.get('trim')}); "
                              "embed every input with one model and view")
        fresh = [i for i, f in enumerate(names) if f not in dataset]
        for i in fresh:
            dataset[names[i]] = name
        files += [names[i] for i in fresh]
        vectors.append(found[fresh])
    if len(files) < 2:
        raise InvalidInput(f"{len(files)} embedded film(s) in all: nothing to compare")
    meta = first or {}
    index = EmbeddingIndex(files, np.concatenate(vectors), meta, _transform(files, np.concatenate(vectors), meta, embedder))
    hashes = pixel_hashes(files, workers) if hash_pixels else {}
    split_of, group_of = film_labels(files, metadata, split_column=split_column, group_by=group_by)
    report = find_duplicates(index, threshold=threshold, hashes=hashes, dataset_of=dataset.__getitem__,
                             split_of=split_of, group_of=group_of)
    assert isinstance(index.transform, VectorTransform)  # EmbeddingIndex fits a named transform when it is made
    write_report(report, report_dir, thumbnails=thumbnails,
                 extra={"model": meta.get("model"), "layer": meta.get("layer"), "transform": index.transform.info,
                        "inputs": {name: str(path) for path, name in zip(inputs, _names(inputs), strict=True)}})
    return report
