"""Exact and near-duplicate films within and across datasets and splits: the leakage finder.

Public chest X-ray collections re-host each other's films (COVID-19 collections copy the same
few hundred films, resized, cropped and re-compressed), and one patient's follow-up films look
alike. When such pairs straddle a train/test split, a published score measures memory rather
than reading. Two films are

* **exact** duplicates when their decoded pixels are identical (a hash of the pixel array, its
  shape and type, so a PNG re-saved as another PNG or TIFF still matches), and
* **near** duplicates when their embeddings, centred and whitened on the films searched
  (:class:`~cxrkit.embed.transform.VectorTransform`), are more similar than either film is to
  its usual neighbours by a margin (:func:`near_pairs`) calibrated on altered copies of
  held-out films (:data:`DEFAULT_THRESHOLD`; docs/representations.md says how).

All pairs are found with blocked matrix products (exact, memory bounded by the block size).
Each pair is then labelled with what the caller knows of its films: the dataset (input) it
came from, its split and its group (e.g. patient), so the report can say which pairs leak.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from ..io import read_image
from .index import EmbeddingIndex

__all__ = ["DEFAULT_THRESHOLD", "NEIGHBOURS", "DuplicateReport", "find_duplicates", "near_pairs", "neighbourhood",
           "pixel_hash", "pixel_hashes"]

log = logging.getLogger(__name__)

#: score (cosine similarity after the learned whitening, minus the films' mean similarity to
#: their :data:`NEIGHBOURS` nearest films) at or above which two films are near duplicates;
#: calibrated with ``benchmarks/similar_altered_copies.py``: above every pair of different
#: patients' films of the 1,200-film NIH sample, reached by most re-encoded or noisy copies
DEFAULT_THRESHOLD = 0.22
#: neighbours whose mean similarity discounts a film's pairs (hubness correction)
NEIGHBOURS = 5
#: and the cosine a near pair needs as well: in a small or sparse archive every film's
#: neighbours are far, so the score alone would flag moderately similar films
MIN_SIMILARITY = 0.7
#: columns of :attr:`DuplicateReport.pairs`
PAIR_COLUMNS = ["file_a", "file_b", "kind", "score", "similarity", "dataset_a", "dataset_b", "split_a", "split_b",
                "group_a", "group_b", "across_datasets", "across_splits", "same_group"]


def pixel_hash(path: str) -> str:
    """SHA-256 of a film's decoded pixels (with their shape and type): equal for the same pixels in any file format."""
    image = read_image(path)
    pixels = np.ascontiguousarray(image.pixels)
    digest = hashlib.sha256(f"{pixels.shape}{pixels.dtype.str}".encode())
    digest.update(pixels.data)
    return digest.hexdigest()


def pixel_hashes(files: Sequence[str], workers: int = 2) -> dict[str, str]:
    """:func:`pixel_hash` of each readable file (decoders release the GIL, so threads overlap); unreadable ones are left out."""
    def one(name: str) -> tuple[str, str | None]:
        try:
            return name, pixel_hash(name)
        except (OSError, ValueError) as exc:
            log.info("%s: not hashed (%s)", name, exc)
            return name, None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return {name: value for name, value in pool.map(one, files) if value is not None}


def neighbourhood(index: EmbeddingIndex, k: int = NEIGHBOURS, block: int = 2048) -> np.ndarray:
    """Each film's mean similarity to its ``k`` nearest other films: how crowded its neighbourhood is."""
    vectors = index.vectors
    k = max(1, min(k, len(vectors) - 1))
    out = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), block):
        scores = vectors[start:start + block] @ vectors.T
        scores[np.arange(len(scores)), start + np.arange(len(scores))] = -np.inf  # not itself
        out[start:start + block] = np.partition(scores, -k, axis=1)[:, -k:].mean(axis=1)
    return out


def near_pairs(index: EmbeddingIndex, threshold: float, block: int = 2048, k: int = NEIGHBOURS,
               min_similarity: float = MIN_SIMILARITY) -> list[tuple[int, int, float, float]]:
    """``(i, j, similarity, score)`` with ``i < j`` for every pair of index films whose score reaches
    ``threshold`` and whose similarity reaches ``min_similarity``.

    The score is the similarity minus the mean of both films' :func:`neighbourhood`
    (CSLS, Conneau et al., ICLR 2018): some films ("hubs") are close to many others in any
    embedding, and a raw similarity threshold flags them with dozens of unrelated films; a
    copy stands out from its film's usual neighbours, a hub's look-alikes do not. Exact: the
    (N, N) similarities are computed ``block`` rows at a time and never held whole.
    """
    vectors = index.vectors
    crowd = neighbourhood(index, k, block)
    out: list[tuple[int, int, float, float]] = []
    for start in range(0, len(vectors), block):
        similarity = vectors[start:start + block] @ vectors.T
        scores = similarity - (crowd[start:start + block, None] + crowd[None, :]) / 2
        rows, cols = np.nonzero((scores >= threshold) & (similarity >= min_similarity))
        keep = cols > rows + start  # each pair once, never a film with itself
        out += [(int(r + start), int(c), float(similarity[r, c]), float(scores[r, c]))
                for r, c in zip(rows[keep], cols[keep], strict=True)]
    return out


@dataclass
class DuplicateReport:
    """The duplicate pairs found and what they mean for the datasets and splits searched."""

    pairs: pd.DataFrame
    films: int
    threshold: float
    hashed: int = 0
    summary: dict[str, int] = field(default_factory=dict)


def _exact_pairs(files: list[str], hashes: Mapping[str, str]) -> set[tuple[int, int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(files):
        if name in hashes:
            groups[hashes[name]].append(i)
    return {(a, b) for members in groups.values() for n, a in enumerate(members) for b in members[n + 1:]}


def find_duplicates(index: EmbeddingIndex, *, threshold: float = DEFAULT_THRESHOLD, hashes: Mapping[str, str] | None = None,
                    dataset_of: Callable[[str], str] | None = None, split_of: Callable[[str], str | None] | None = None,
                    group_of: Callable[[str], str | None] | None = None) -> DuplicateReport:
    """Exact (same pixel hash, when ``hashes`` are given) and near (score >= ``threshold``) pairs of the index's films.

    ``dataset_of``, ``split_of`` and ``group_of`` label a film (by its name in the index) with
    its dataset, split and group (e.g. patient id); unknown is ``None``. A pair is listed once,
    as exact when the pixels are identical, best score first.
    """
    if not -2.0 <= threshold <= 2.0:
        raise InvalidArgument(f"`threshold` (a similarity margin) must lie in [-2, 2], got {threshold}")
    files = index.files
    exact = _exact_pairs(files, hashes or {})
    found = {(i, j): (score, similarity) for i, j, similarity, score in near_pairs(index, threshold)}
    if exact:
        crowd = neighbourhood(index)
        for i, j in exact:
            similarity = float(index.vectors[i] @ index.vectors[j])
            found.setdefault((i, j), (similarity - float(crowd[i] + crowd[j]) / 2, similarity))
    rows = []
    for (i, j), (score, similarity) in found.items():
        a, b = files[i], files[j]
        rows.append([a, b, "exact" if (i, j) in exact else "near", round(score, 6), round(similarity, 6),
                     *_labels(dataset_of, a, b), *_labels(split_of, a, b), *_labels(group_of, a, b)])
    frame = pd.DataFrame(rows, columns=PAIR_COLUMNS[:11])
    frame["across_datasets"] = _differ(frame, "dataset")
    frame["across_splits"] = _differ(frame, "split")
    same = (frame["group_a"] == frame["group_b"]) & frame["group_a"].notna()
    frame["same_group"] = np.where(frame["group_a"].isna() | frame["group_b"].isna(), None, same)
    frame = frame.sort_values(["kind", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)
    # the label columns hold True, False or None (unknown): count the True and the False ones only
    summary = {"pairs": len(frame), "exact": int((frame["kind"] == "exact").sum()), "near": int((frame["kind"] == "near").sum()),
               "across_datasets": int(frame["across_datasets"].eq(True).sum()),
               "across_splits": int(frame["across_splits"].eq(True).sum()),
               "same_group": int(frame["same_group"].eq(True).sum()),
               "different_group": int(frame["same_group"].eq(False).sum())}
    return DuplicateReport(frame, len(files), threshold, len(hashes or {}), summary)


def _labels(label_of: Callable[[str], str | None] | None, a: str, b: str) -> tuple[str | None, str | None]:
    return (label_of(a), label_of(b)) if label_of is not None else (None, None)


def _differ(frame: pd.DataFrame, what: str) -> pd.Series:
    """True/False where both films' labels are known, None where either is unknown."""
    a, b = frame[f"{what}_a"], frame[f"{what}_b"]
    known = a.notna() & b.notna()
    return pd.Series(np.where(known, a != b, None), index=frame.index, dtype=object)
