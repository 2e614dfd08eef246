"""Merge datasets into one, aligning their labels by name (NaN where a source lacks a label)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from ..labels import PATHOLOGIES
from .base import XrayDataset

__all__ = ["MergedDataset", "merge"]


def _vocabulary(datasets: Sequence[Any], labels: str | Sequence[str]) -> tuple[str, ...]:
    if not isinstance(labels, str):
        return tuple(labels)
    names = [list(d.label_names) for d in datasets]
    if labels == "union":
        pool = [n for ns in names for n in ns]
    elif labels == "intersection":
        pool = [n for n in names[0] if all(n in ns for ns in names[1:])]
    elif labels == "standard":
        return PATHOLOGIES
    else:
        raise InvalidArgument(f"labels must be 'union', 'intersection', 'standard' or a list, got {labels!r}")
    unique = list(dict.fromkeys(pool))
    return tuple([p for p in PATHOLOGIES if p in unique] + [n for n in unique if n not in PATHOLOGIES])


class MergedDataset:
    """Several datasets served as one; ``meta["dataset"]`` keeps each sample's source.

    The label matrix is realigned once at construction, so ``labels`` and ``frame`` are
    ready for splitting, summaries and sharding exactly like a single dataset's.
    """

    def __init__(self, datasets: Sequence[Any], labels: str | Sequence[str] = "union"):
        if not datasets:
            raise InvalidArgument("merge needs at least one dataset")
        self.datasets = list(datasets)
        self.label_names = _vocabulary(self.datasets, labels)
        self._columns = [[list(d.label_names).index(n) if n in d.label_names else None for n in self.label_names]
                         for d in self.datasets]
        self.labels = np.concatenate([self._align(i, d.labels) for i, d in enumerate(self.datasets)])
        sizes = [len(d) for d in self.datasets]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])
        frames = []
        for d in self.datasets:
            f = d.frame[["path", "patient_id", "view", "age", "sex", "row"]].copy()
            f["dataset"] = d.name
            # Patients of different datasets are different people even when their ids collide.
            f["patient_id"] = d.name + ":" + f["patient_id"].astype(str)
            frames.append(f)
        self.frame = pd.concat(frames, ignore_index=True)
        self.name = "+".join(d.name for d in self.datasets)

    def _align(self, i: int, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.float32).reshape(-1, len(self.datasets[i].label_names))
        out = np.full((labels.shape[0], len(self.label_names)), np.nan, dtype=np.float32)
        for j, src in enumerate(self._columns[i]):
            if src is not None:
                out[:, j] = labels[:, src]
        return out

    @property
    def patients(self) -> np.ndarray:
        return self.frame["patient_id"].to_numpy()

    def locate(self, index: int) -> tuple[int, int]:
        """(dataset number, row within it) of a merged index."""
        which = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return which, int(index - self._offsets[which])

    def subset(self, indices: Sequence[int] | np.ndarray) -> MergedSubset:
        return MergedSubset(self, np.asarray(indices, dtype=int))

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for merged dataset of {len(self)} images")
        which, inner = self.locate(index)
        sample = dict(self.datasets[which][inner])
        sample["labels"] = self.labels[index].copy()
        sample["meta"] = {**sample["meta"], "index": index}
        return sample

    def __repr__(self) -> str:
        return f"MergedDataset({self.name!r}, images={len(self)}, labels={len(self.label_names)})"


class MergedSubset:
    """Rows of a merged dataset (a split): same interface as the merged dataset."""

    def __init__(self, parent: MergedDataset, indices: np.ndarray):
        self.parent, self.indices = parent, indices
        self.labels = parent.labels[indices]
        self.frame = parent.frame.iloc[indices].reset_index(drop=True)
        self.label_names, self.name = parent.label_names, parent.name

    @property
    def patients(self) -> np.ndarray:
        return self.frame["patient_id"].to_numpy()

    def subset(self, indices: Sequence[int] | np.ndarray) -> MergedSubset:
        return MergedSubset(self.parent, self.indices[np.asarray(indices, dtype=int)])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.parent[int(self.indices[index])]


def merge(datasets: Sequence[XrayDataset], labels: str | Sequence[str] = "union") -> MergedDataset:
    """Merge datasets; ``labels`` is "union", "intersection", "standard" or an explicit list."""
    return MergedDataset(datasets, labels)
