"""Counts of a dataset from its label matrix and frame: what ``cxr datasets summary`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Summary", "summarize", "label_counts"]


def label_counts(labels: np.ndarray, names: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """``label, positive, negative, unknown`` per label (uncertain -1 kept as -1 counts as neither)."""
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, len(names))
    return pd.DataFrame({
        "label": list(names),
        "positive": (labels == 1).sum(axis=0).astype(int),
        "negative": (labels == 0).sum(axis=0).astype(int),
        "unknown": np.isnan(labels).sum(axis=0).astype(int),
    })


@dataclass
class Summary:
    dataset: str
    images: int
    patients: int
    views: dict[str, int]
    counts: pd.DataFrame
    missing_images: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"dataset": self.dataset, "images": self.images, "patients": self.patients, "views": self.views,
               "labels": self.counts.to_dict(orient="records")}
        if self.missing_images is not None:
            out["missing_images"] = self.missing_images
        return out


def summarize(dataset: Any, check_images: bool = False) -> Summary:
    """Images, patients, views and per-label counts; ``check_images`` also counts missing files."""
    frame = dataset.frame
    missing = None
    if check_images:
        missing = sum(1 for i in range(len(dataset)) if not dataset.image_path(i).exists())
    views = {str(k): int(v) for k, v in frame["view"].value_counts().items()}
    return Summary(
        dataset=dataset.name,
        images=len(frame),
        patients=int(frame["patient_id"].nunique()),
        views=views,
        counts=label_counts(dataset.labels, dataset.label_names),
        missing_images=missing,
    )
