"""Centring and whitening of embeddings, fitted on an index and stored beside it.

A classifier's pooled features are non-negative (they come out of a ReLU) and share one
large common component: every film of the bundled demonstration DenseNet lies within
cosine 0.97-0.997 of every other, so the small differences that tell two films apart
drown in what all films have in common, and a 5 % contrast change moves a film as far as
another patient's film. Retrieval should not depend on how good the classifier is.

The fix is old and cheap (Jegou & Chum, ECCV 2012; Radenovic et al., TPAMI 2019): subtract
the archive's mean vector, rotate onto principal axes and rescale each axis by its spread,
then compare directions. ``whiten`` takes the axes of the archive's own spread (PCA
whitening). ``learned`` (what ``cxr embed`` stores) takes the axes along which *altered
copies* of some archive films move away from their originals (:mod:`cxrkit.embed.alter`:
small turns, crops, contrast, noise, JPEG) and shrinks them, so a copy stays near its film
while what tells films apart is kept. Measured on held-out NIH films it finds a +15 %
contrast copy for 100 of 100 films where plain cosine finds 30 (docs/representations.md).
The rescaling is *shrunk*: each axis is divided by ``sqrt(variance + shrinkage * mean
variance)``, because a few hundred films or moves give noisy small variances whose full
inverse would blow up noise; axes the data never spans keep unit scale.

The transform must be the same for the archive and every query, so it is fitted once on
the index (the ok rows of ``cxr embed``'s table) and stored as a small sidecar file
(``_transform.safetensors`` inside a Parquet dataset folder, which every Parquet reader
skips because of the leading underscore; ``NAME.transform.safetensors`` beside a single
file), tied to the table by the number of films and a digest of their names.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import InvalidArgument, InvalidInput

__all__ = ["METHODS", "VectorTransform", "files_digest", "transform_path"]

log = logging.getLogger(__name__)

#: ``none`` (plain cosine of the raw vectors), ``centre`` (minus the archive mean), ``whiten``
#: (PCA whitening on the archive), ``learned`` (whitening against the alterations' moves)
METHODS = ("none", "centre", "whiten", "learned")
#: shrinkage of the whitening, as a fraction of the mean variance; chosen on held-out NIH
#: films and their altered copies (docs/representations.md has the measurement)
DEFAULT_SHRINKAGE = {"whiten": 0.1, "learned": 0.01}


def files_digest(files: list[str]) -> str:
    """A short digest of an index's film names, so a stored transform is not applied to another table."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def transform_path(index: str | Path) -> Path:
    """Where the transform of the index at ``index`` is stored."""
    index = Path(index)
    return index / "_transform.safetensors" if index.is_dir() else index.with_name(index.name + ".transform.safetensors")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


@dataclass
class VectorTransform:
    """``x -> unit((unit(x) - mean) @ matrix)``: centring (``matrix`` None) or shrunk whitening.

    Raw vectors are L2-normalised before centring so that a film's overall feature
    magnitude (which follows its brightness) does not weigh in the mean or the axes.
    """

    method: str
    mean: np.ndarray | None = None
    matrix: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, vectors: np.ndarray, method: str = "whiten", *, shrinkage: float | None = None,
            files: list[str] | None = None, pairs: tuple[np.ndarray, np.ndarray] | None = None) -> VectorTransform:
        """Fit on the archive's vectors ``(N, D)``; ``files`` (their names) tie it to the index.

        ``method="learned"`` needs ``pairs``: vectors of some archive films and of altered
        copies of them (:mod:`cxrkit.embed.alter`), row for row; the axes are then those along
        which the alterations move a film, and the rescaling shrinks them.
        """
        if method not in METHODS:
            raise InvalidArgument(f"transform must be one of {', '.join(METHODS)}, got {method!r}")
        vectors = np.asarray(vectors, dtype=np.float64)
        info: dict[str, Any] = {"method": method, "films": len(vectors)}
        if files is not None:
            info["files_digest"] = files_digest(files)
        if method == "none":
            return cls(method, info=info)
        if len(vectors) < 2:
            raise InvalidInput(f"centring needs at least 2 films in the index, it has {len(vectors)}")
        unit = _unit(vectors)
        mean = unit.mean(axis=0)
        if method == "centre":
            return cls(method, mean.astype(np.float32), info=info)
        if method == "learned":
            if pairs is None or len(pairs[0]) < 2 or np.shape(pairs[0]) != np.shape(pairs[1]):
                raise InvalidArgument("a learned transform needs the vectors of films and of their altered copies, row for row")
            moves = _unit(np.asarray(pairs[0], np.float64)) - _unit(np.asarray(pairs[1], np.float64))
            covariance = moves.T @ moves / len(moves)
            info["pairs"] = len(moves)
        else:
            centred = unit - mean
            covariance = centred.T @ centred / (len(vectors) - 1)
        shrinkage = DEFAULT_SHRINKAGE[method] if shrinkage is None else float(shrinkage)
        if shrinkage <= 0:
            raise InvalidArgument(f"whitening shrinkage must be positive, got {shrinkage}")
        # eigen-decomposition of the D x D covariance: exact, and O(N D^2) however many films
        variance, axes = np.linalg.eigh(covariance)
        variance = np.clip(variance, 0.0, None)
        floor = shrinkage * float(variance.mean())
        if floor <= 0:
            raise InvalidInput("every film of the index has the same embedding; nothing to whiten")
        matrix = axes / np.sqrt(variance + floor)[None, :] * np.sqrt(floor)  # unit scale on unseen axes
        info.update(shrinkage=shrinkage, rank=int((variance > 1e-12 * variance.max()).sum()))
        return cls(method, mean.astype(np.float32), matrix.astype(np.float32), info)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Transformed vectors, float32, each of length 1 (a dot product is the cosine); zero rows stay zero."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if self.mean is not None and vectors.shape[1] != self.mean.shape[0]:
            raise InvalidInput(f"vectors have {vectors.shape[1]} components, the transform {self.mean.shape[0]}")
        out = _unit(vectors)
        if self.mean is not None:
            out = out - self.mean
        if self.matrix is not None:
            out = out @ self.matrix
        return _unit(out).astype(np.float32, copy=False)

    def matches(self, files: list[str]) -> bool:
        """Whether this transform was fitted on exactly these films (a resumed ``cxr embed`` adds some)."""
        return self.info.get("films") == len(files) and self.info.get("files_digest") == files_digest(files)

    def save(self, path: str | Path) -> Path:
        """Write the transform atomically (a reader sees the old file or the whole new one)."""
        from safetensors.numpy import save_file

        tensors = {name: np.ascontiguousarray(value) for name, value in
                   (("mean", self.mean), ("matrix", self.matrix)) if value is not None}
        if not tensors:  # safetensors wants at least one tensor
            tensors = {"none": np.zeros(1, np.float32)}
        with atomic_path(path) as temp:
            save_file(tensors, str(temp), metadata={"cxrkit_transform": json.dumps(self.info)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> VectorTransform:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                info = json.loads((handle.metadata() or {}).get("cxrkit_transform", "{}"))
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (OSError, SafetensorError, ValueError) as exc:
            raise InvalidInput(f"{path}: not a readable embedding transform ({exc}); delete it to refit") from None
        method = info.get("method")
        if method not in METHODS:
            raise InvalidInput(f"{path}: unknown transform method {method!r}; delete it to refit")
        return cls(method, tensors.get("mean"), tensors.get("matrix"), info)

    def __repr__(self) -> str:
        return f"VectorTransform({self.method!r}, films={self.info.get('films')}, shrinkage={self.info.get('shrinkage')})"
