"""Patient-level splits: the dataset's official one where it has it, else seeded and grouped.

A patient's images always land in one split, because a model that has seen a patient's
other film in training scores optimistically on the test film.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from .base import XrayDataset

__all__ = ["official_split", "patient_split", "stratified_patient_split", "split_dataset", "assert_no_leakage"]


def official_split(dataset: XrayDataset) -> dict[str, XrayDataset]:
    """The dataset's own split (NIH train_val/test lists, CheXpert train/valid, MIMIC split file, Google val/test).

    Rows the official files do not list are left out. Raises ``ValueError`` when the
    dataset (as loaded) has no official split, e.g. NIH without ``train_val_list.txt``.
    """
    if "split" not in dataset.frame.columns or not (dataset.frame["split"].astype(str) != "").any():
        raise InvalidArgument(f"{dataset.name}: no official split loaded (pass the split files, or use patient_split)")
    split = dataset.frame["split"].astype(str).to_numpy()
    return {name: dataset.subset(np.flatnonzero(split == name)) for name in sorted(set(split) - {""})}


def patient_split(patients: np.ndarray, ratios: Mapping[str, float], seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices per split: patients shuffled with ``seed`` and cut by cumulative image count.

    Cutting by images (not patients) keeps split sizes close to the ratios when patients
    have very different numbers of films (NIH: 1 to 184).
    """
    names = list(ratios)
    weights = np.asarray([float(ratios[n]) for n in names])
    if (weights < 0).any() or weights.sum() <= 0:
        raise InvalidArgument(f"split ratios must be non-negative and not all zero, got {dict(ratios)}")
    weights = weights / weights.sum()
    patients = np.asarray(patients).astype(str)
    unique, inverse, counts = np.unique(patients, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    cum = np.cumsum(counts[order]) / len(patients)
    bounds = np.cumsum(weights)
    # A patient goes to the first split whose upper bound its cumulative share has not passed.
    which = np.minimum(np.searchsorted(bounds, cum - 1e-12, side="left"), len(names) - 1)
    assigned = np.empty(len(unique), dtype=int)
    assigned[order] = which
    row_split = assigned[inverse]
    return {name: np.flatnonzero(row_split == i) for i, name in enumerate(names)}


def stratified_patient_split(patients: np.ndarray, strata: np.ndarray, ratios: Mapping[str, float],
                             seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`patient_split` done separately within each stratum, so every part keeps each
    stratum's share (e.g. each validation split holds ~20 % of every source's images).

    A patient belongs to the stratum most of their images have (ties: the first value in
    sorted order), so a patient is still never split. Without this, a small subgroup (221
    films of one draw among 1,200) can land in validation with a handful of images.
    """
    patients = np.asarray(patients).astype(str)
    strata = np.asarray(strata).astype(str)
    frame = pd.DataFrame({"patient": patients, "stratum": strata})
    counts = frame.groupby(["patient", "stratum"]).size().reset_index(name="n")
    counts = counts.sort_values(["patient", "n", "stratum"], ascending=[True, False, True])
    home = counts.drop_duplicates("patient").set_index("patient")["stratum"]
    row_home = home.reindex(patients).to_numpy()
    out: dict[str, list[np.ndarray]] = {name: [] for name in ratios}
    for value in sorted(set(row_home)):
        rows = np.flatnonzero(row_home == value)
        for name, idx in patient_split(patients[rows], ratios, seed).items():
            out[name].append(rows[idx])
    return {name: np.sort(np.concatenate(parts)) if parts else np.array([], dtype=int) for name, parts in out.items()}


def split_dataset(dataset: XrayDataset, ratios: Mapping[str, float] | None = None, seed: int = 0,
                  official: bool | None = None) -> dict[str, XrayDataset]:
    """Split a dataset by patient: official when available (or ``official=True``), else seeded ``ratios``."""
    has_official = "split" in dataset.frame.columns and (dataset.frame["split"].astype(str) != "").any()
    if official or (official is None and has_official and ratios is None):
        return official_split(dataset)
    ratios = ratios or {"train": 0.8, "valid": 0.1, "test": 0.1}
    parts = patient_split(dataset.patients, ratios, seed)
    return {name: dataset.subset(idx) for name, idx in parts.items()}


def assert_no_leakage(splits: Mapping[str, XrayDataset]) -> None:
    """Raise ``AssertionError`` naming a patient found in two splits."""
    seen: dict[str, str] = {}
    for name, part in splits.items():
        for patient in set(part.patients):
            if patient in seen and seen[patient] != name:
                raise AssertionError(f"patient {patient} is in splits {seen[patient]!r} and {name!r}")
            seen[patient] = name
