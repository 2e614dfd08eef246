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
from .loaders import LabelTable, table_from

__all__ = ["dataset_split_labels", "predict_images", "probe_inputs", "shortcut_check", "PROBE_INPUTS"]

#: What the shortcut probe looks at: the model's pooled features, or the film itself.
PROBE_INPUTS = ("features", "pixels")
#: Side of the downsampled film the pixel probe sees (32 x 32 = 1,024 values, as many as DenseNet's features).
PIXEL_PROBE_SIZE = 32

#: 80/20 by patient, the ratios of the shipped training configs.
DEFAULT_RATIOS = {"train": 0.8, "valid": 0.2}


def dataset_split_labels(dataset: str, labels: str | Path, images: str | Path, split: str = "valid",
                         seed: int = 0) -> tuple[list[Path], LabelTable]:
    """Image files and labels of one split (``all`` for every image) of a registered dataset."""
    from ..datasets import DatasetError, open_dataset, split_dataset

    labels, images = Path(labels), Path(images)
    try:
        data = open_dataset(dataset, images, labels)
        if split != "all":
            parts = split_dataset(data, DEFAULT_RATIOS, seed=seed)
            if split not in parts:
                raise InputFileError(labels, f"split {split!r} not found; this dataset has {sorted(parts)} (or use all)")
            data = parts[split]
    except DatasetError as exc:
        raise InputFileError(labels, str(exc)) from exc
    files = [images / str(p) for p in data.frame["path"]]
    return files, table_from(data, labels, dataset)


def predict_images(files: list[Path], predictor, batch_size: int = 8) -> pd.DataFrame:
    """Scores of ``files`` indexed by file name, in the layout :func:`load_predictions` returns."""
    from ..predict import predict_files

    rows = [r for r in predict_files(files, predictor, batch_size=batch_size) if r["status"] == "ok"]
    frame = pd.DataFrame([{c: r[c] for c in predictor.columns} for r in rows],
                         index=pd.Index([Path(r["file"]).name for r in rows], name="id"), columns=predictor.columns)
    return frame.astype(float)


class _ProbeRunner:
    """What the shortcut probe sees, as a runner :func:`cxrkit.predict.predict_files` can drive
    (``columns``, ``prepare``, ``predict_batch``): reading, read-ahead and error rows are then
    predict's own, not a second copy here."""

    def __init__(self, predictor, kind: str):
        from ..preprocess import model_input

        self.predictor, self.kind = predictor, kind
        #: the predictor's film steps, which its ``prepare`` applies (none for the bare pixel probe)
        self.film = predictor.film if predictor is not None else None
        if predictor is not None:
            self.prepare = predictor.prepare
        else:  # the pixel probe needs no model: films read as a 224 px model input
            self.prepare = lambda image: (model_input(image.pixels, image.maxval, 224), {})
        # every registered architecture declares the width of its pooled features
        width = PIXEL_PROBE_SIZE ** 2 if kind == "pixels" else int(predictor.model.num_features)
        self.columns = [f"x{i}" for i in range(width)]

    def predict_batch(self, batch):
        import cv2
        import numpy as np
        import torch

        if self.kind == "pixels":
            small = [cv2.resize(b[0], (PIXEL_PROBE_SIZE, PIXEL_PROBE_SIZE), interpolation=cv2.INTER_AREA)
                     for b in batch]
            return np.stack([s.reshape(-1) / 1024.0 for s in small])
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.predictor.device)
            model = self.predictor.model
            return model.forward_head(model.forward_features(x), pre_logits=True).float().cpu().numpy()


def probe_inputs(files: list[Path], predictor=None, kind: str = "features", batch_size: int = 16) -> pd.DataFrame:
    """One row per readable file (indexed by file name): the model's pooled features, or the
    model input downsampled to 32 x 32 pixels (``predictor`` may then be None: films are read
    at 224 px). Unreadable files are left out (their prediction rows already say why)."""
    from ..predict import predict_files

    if kind not in PROBE_INPUTS:
        raise InputFileError(kind, f"probe input must be one of {', '.join(PROBE_INPUTS)}")
    if predictor is None and kind == "features":
        raise InputFileError(kind, "the feature probe needs a model (`model`); the pixel probe does not")
    runner = _ProbeRunner(predictor, kind)
    rows = [r for r in predict_files(files, runner, batch_size=batch_size) if r["status"] == "ok"]
    return pd.DataFrame([[r[c] for c in runner.columns] for r in rows],
                        index=pd.Index([Path(r["file"]).name for r in rows], name="id"))


def shortcut_check(files: list[Path], groups: pd.Series, patients: pd.Series | None, rates: pd.DataFrame, *,
                   predictor=None, kind: str = "features", n_bootstrap: int = 1000, seed: int = 0):
    """Probe whether ``groups`` (ids -> group, e.g. source) can be read off the model's features or
    the pixels of ``files``; warn when it can and ``rates`` (label rates by group) differ."""
    from .shortcut import shortcut_probe, shortcut_warning
    from .subgroups import differing_labels

    inputs = probe_inputs(files, predictor, kind)
    ids = inputs.index.intersection(groups.dropna().index)
    if len(ids) == 0:
        raise InputFileError(groups.name or "group", "no probed image has a group value")
    inputs = inputs.loc[ids]
    pids = patients.reindex(ids).fillna(pd.Series("image:" + ids, index=ids)).tolist() if patients is not None else None
    probe = shortcut_probe(inputs.to_numpy(), groups.loc[ids].tolist(), pids, column=str(groups.name), kind=kind,
                           n_bootstrap=n_bootstrap, seed=seed)
    return shortcut_warning(probe, differing_labels(rates, str(groups.name)))
