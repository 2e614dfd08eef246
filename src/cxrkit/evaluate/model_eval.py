"""Evaluate a model directly on a dataset split: predict the split's images, then score them.

The same two steps a user can run by hand (``cxr predict`` then ``cxr evaluate
--predictions``), joined so the split is chosen by the dataset's own rules (official
split where it defines one, else a seeded 80/20 patient-level split) and the labels come
from the same adapter that chose the images. A seeded split matches a training run's
validation split only when data, ratios, seed and excluded patients are the same; a
model's card records the split it was trained with.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputFileError
from .loaders import LabelTable, _table_from

__all__ = ["dataset_split_labels", "predict_images"]

#: 80/20 by patient, the ratios of the shipped training configs.
DEFAULT_RATIOS = {"train": 0.8, "valid": 0.2}


def dataset_split_labels(dataset: str, labels: str | Path, images: str | Path, split: str = "valid",
                         seed: int = 0) -> tuple[list[Path], LabelTable]:
    """Image files and labels of one split (``all`` for every image) of a registered dataset."""
    from cxrkit.datasets import DatasetError, get_dataset, split_dataset

    labels, images = Path(labels), Path(images)
    try:
        data = get_dataset(dataset, images, labels)
        if split != "all":
            parts = split_dataset(data, DEFAULT_RATIOS, seed=seed)
            if split not in parts:
                raise InputFileError(labels, f"split {split!r} not found; this dataset has {sorted(parts)} (or use all)")
            data = parts[split]
    except DatasetError as exc:
        raise InputFileError(labels, str(exc)) from exc
    files = [images / str(p) for p in data.frame["path"]]
    return files, _table_from(data, labels, dataset)


def predict_images(files: list[Path], predictor, batch_size: int = 8) -> pd.DataFrame:
    """Scores of ``files`` indexed by file name, in the layout :func:`load_predictions` returns."""
    from cxrkit.predict import predict_files

    rows = [r for r in predict_files(files, predictor, batch_size=batch_size) if r["status"] == "ok"]
    frame = pd.DataFrame([{c: r[c] for c in predictor.columns} for r in rows],
                         index=pd.Index([Path(r["file"]).name for r in rows], name="id"), columns=predictor.columns)
    return frame.astype(float)
