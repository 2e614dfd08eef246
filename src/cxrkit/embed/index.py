"""Exact nearest-film search by cosine similarity over an embeddings table, in NumPy.

The index is the table ``cxr embed`` writes (a Parquet dataset folder or a single Parquet
file): ``file`` and a fixed-size float32 ``vector`` per row, plus the schema metadata saying
which model and layer produced the vectors. Loading keeps the ok rows, centres and whitens
the vectors once with the transform stored beside the table (:mod:`.transform`), and a search
is one matrix product: exact, and fast enough for archives that fit in memory (100,000 films
x 1,024 floats is 400 MB and a query reads them all: tens of milliseconds).
Beyond memory, the same vectors feed FAISS unchanged (``IndexFlatIP`` on the normalised
vectors is this search; ``IndexIVFFlat``/``IndexHNSWFlat`` are the approximate ones).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgument, InvalidInput, MissingDependency, MissingFile
from ..predict.parquet import METADATA_KEY, part_files
from .transform import VectorTransform, transform_path

__all__ = ["EmbeddingIndex", "Neighbour", "read_embeddings", "stored_transform", "unit_vectors", "write_transform"]

log = logging.getLogger(__name__)

#: above this many films an exact search costs more than ~0.1 s per query and 800 MB of memory
#: (measured in benchmarks/similar_altered_copies.py); the log then points to FAISS
EXACT_SEARCH_UP_TO = 200_000


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32), so a dot product is the cosine; an all-zero row stays zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """``(files, vectors (N, D) float32, metadata)`` of the ok rows of an embeddings table."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("pyarrow", "Reading an embeddings table") from None
    path = Path(path)
    first = next(iter(part_files(path)), None) if path.is_dir() else path
    if first is None or not first.exists():
        raise MissingFile(f"{path}: no embeddings table there; build one with cxr embed")
    try:
        metadata = json.loads((pq.read_schema(first).metadata or {}).get(METADATA_KEY, b"{}"))
        table = pq.read_table(path, columns=["file", "status", "vector"])
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{path}: not an embeddings table ({exc})") from None
    table = table.filter(table.column("status").to_numpy(zero_copy_only=False) == "ok")
    files = table.column("file").to_pylist()
    if not files:
        return [], np.zeros((0, int(metadata.get("dim", 0))), np.float32), metadata
    column = table.column("vector").combine_chunks()
    vectors = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
    return files, np.asarray(vectors, dtype=np.float32), metadata


@dataclass(frozen=True)
class Neighbour:
    """One search hit: the film and its cosine similarity to the query (1 = same direction)."""

    rank: int
    file: str
    similarity: float


@dataclass
class EmbeddingIndex:
    """An archive's films, searchable by exact cosine similarity after a :class:`VectorTransform`.

    ``transform`` is ``"whiten"`` (default: centred and shrunk-PCA-whitened, fitted on these
    vectors), ``"centre"``, ``"none"`` (plain cosine of the raw vectors) or a fitted
    :class:`VectorTransform` (e.g. the ``learned`` one ``cxr embed`` stores with the index). Queries go through the same
    transform, so the similarity of a film to itself stays 1 and rankings are comparable.
    """

    files: list[str]
    vectors: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    transform: VectorTransform | str = "whiten"

    def __post_init__(self) -> None:
        if self.transform == "learned":
            raise InvalidArgument("a learned transform is fitted on altered copies of films: pass the fitted VectorTransform "
                                  "(cxrkit.embed.alter.learned_transform) or load an index cxr embed wrote")
        if isinstance(self.transform, str):
            self.transform = VectorTransform.fit(self.vectors, self.transform, files=self.files)
        self.vectors = self.transform(self.vectors)
        if len(self.files) > EXACT_SEARCH_UP_TO:
            log.info("%d films: exact search reads every vector per query; for archives this size an approximate "
                     "FAISS index on these transformed vectors is faster (docs/representations.md)", len(self.files))

    @classmethod
    def load(cls, path: str | Path, transform: str = "auto") -> EmbeddingIndex:
        """The index at ``path`` (``cxr embed``'s table); ``transform="auto"`` uses the stored one.

        An index written before transforms were stored, or grown since (a resumed run),
        gets one fitted now in memory, the same as the stored one would be; the log says so.
        """
        files, vectors, metadata = read_embeddings(path)
        if not files:
            raise InvalidInput(f"{path}: the table holds no embedded films (every row is an error row?)")
        return cls(files, vectors, metadata, stored_transform(path, files) if transform == "auto" else transform)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def save_transform(self, path: str | Path) -> Path:
        """Store this index's transform with the table at ``path`` (see :func:`transform_path`)."""
        assert isinstance(self.transform, VectorTransform)
        return self.transform.save(transform_path(path))

    def similarity(self, queries: np.ndarray) -> np.ndarray:
        """Cosine similarities ``(Q, N)`` of raw query vectors to every film, after the transform."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.shape[1] != self.raw_dim:
            raise InvalidArgument(f"query vectors have {queries.shape[1]} components, the index {self.raw_dim}; "
                                  "embed the query with the index's model and layer")
        assert isinstance(self.transform, VectorTransform)
        return self.transform(queries) @ self.vectors.T

    @property
    def raw_dim(self) -> int:
        """Components of the vectors before the transform (what a query must have)."""
        assert isinstance(self.transform, VectorTransform)
        mean = self.transform.mean
        return int(mean.shape[0]) if mean is not None else self.dim

    def search(self, queries: np.ndarray, k: int = 10, exclude: list[str | None] | None = None) -> list[list[Neighbour]]:
        """The ``k`` most similar films for each query vector, best first.

        ``exclude[i]`` names a file left out of query ``i``'s answer (the query film itself
        when it is in the archive, so the answer is its neighbours rather than itself).
        """
        if k < 1:
            raise InvalidArgument("k must be at least 1")
        similarity = self.similarity(queries)
        position = {name: i for i, name in enumerate(self.files)}
        out = []
        for row, scores in enumerate(similarity):
            excluded = exclude[row] if exclude else None
            skip = position.get(excluded) if excluded is not None else None
            if skip is not None:
                scores[skip] = -np.inf
            take = min(k, len(self.files) - (skip is not None))
            top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")][:take]
            out.append([Neighbour(rank + 1, self.files[i], float(scores[i])) for rank, i in enumerate(top)])
        return out


def stored_transform(path: str | Path, files: list[str]) -> VectorTransform | str:
    """The transform stored with the index at ``path`` if it was fitted on exactly ``files``, else ``"whiten"``."""
    sidecar = transform_path(path)
    if not sidecar.exists():
        log.info("%s has no stored embedding transform (written by an older cxr embed); fitted one on its %d films now",
                 path, len(files))
        return "whiten"
    transform = VectorTransform.load(sidecar)
    if not transform.matches(files):
        log.info("%s: the stored embedding transform was fitted on %s films, the table now has %d; refitted in memory",
                 path, transform.info.get("films"), len(files))
        return "whiten"
    log.debug("%s: using the stored %s transform", path, transform.method)
    return transform


def write_transform(path: str | Path, embedder: Any = None, method: str = "whiten") -> Path:
    """Fit the search transform of the index at ``path`` and store it beside the table (``cxr embed`` does this last).

    With the index's ``embedder`` the transform is ``learned`` from altered copies of some of
    its films (:func:`cxrkit.embed.alter.learned_transform`); without, it is ``method``.
    """
    files, vectors, _ = read_embeddings(path)
    if not files:
        raise InvalidInput(f"{path}: the table holds no embedded films (every row is an error row?)")
    if embedder is not None:
        from .alter import learned_transform

        transform = learned_transform(files, vectors, embedder)
    else:
        transform = VectorTransform.fit(vectors, method, files=files)
    return transform.save(transform_path(path))
