"""Validation metrics for training, computed by :mod:`cxrkit.evaluate` (one implementation of AUC,
bootstrap CIs and thresholds in the toolkit, so a card's numbers equal ``cxr evaluate``'s)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["auc_per_label", "validation_metrics", "regression_metrics", "subgroup_frame", "subgroup_metrics",
           "subgroup_regression"]


def auc_per_label(truth: np.ndarray, scores: np.ndarray) -> list[float]:
    """AUROC of each column (NaN targets masked; NaN where a class is absent), for per-epoch logging."""
    from ..evaluate import auroc

    return [auroc(truth[:, j], scores[:, j]) for j in range(truth.shape[1])]


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.integer):
        return int(value)
    return value


def validation_metrics(truth: np.ndarray, scores: np.ndarray, labels: Sequence[str], ids: Sequence[str],
                       patients: Sequence[str] | np.ndarray, *, task: str, threshold_method: str, n_bootstrap: int,
                       seed: int = 0) -> dict[str, Any]:
    """Per-label AUC with patient-level bootstrap 95 % CI, the chosen threshold and its operating point.

    Returns ``{"per_label": {label: {...}}, "mean": {...}, "thresholds": {label: t}}``; labels
    whose threshold is undefined (no positives in validation) get none rather than a guess.
    """
    from ..evaluate import evaluate_predictions

    index = pd.Index([str(i) for i in ids])
    evaluation = evaluate_predictions(
        pd.DataFrame(scores, index=index, columns=list(labels)),
        pd.DataFrame(truth, index=index, columns=list(labels)),
        patients=pd.Series([str(p) for p in patients], index=index),
        threshold_method=threshold_method, n_bootstrap=n_bootstrap, seed=seed,
        task="multiclass" if task == "multiclass" else "multilabel",
    )
    rows = {row["label"]: {k: _clean(v) for k, v in row.items() if k != "label"}
            for row in evaluation.table.to_dict(orient="records")}
    mean = rows.pop("mean", {})
    thresholds = {}
    for label, row in rows.items():
        t = row.get("threshold")
        if t is not None and 0.0 < t < 1.0:
            thresholds[label] = float(t)
    out: dict[str, Any] = {"per_label": rows, "mean": mean, "thresholds": thresholds, "evaluation": evaluation}
    if evaluation.multiclass is not None:
        out["accuracy"] = float(evaluation.multiclass.accuracy)
    return out


def regression_metrics(pred: np.ndarray, target: np.ndarray, patients: Sequence[str] | np.ndarray, *, reference: float,
                       n_bootstrap: int, seed: int = 0) -> dict[str, Any]:
    """MAE (with a patient-level bootstrap 95 % CI), RMSE, Pearson r, and the MAE of always
    predicting ``reference`` (the training mean): a model is only useful where it beats that."""
    from ..evaluate import bootstrap_indices, bootstrap_mean_ci

    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    error = np.abs(pred - target)
    low, high = bootstrap_mean_ci(error, bootstrap_indices(len(error), list(patients), n_boot=n_bootstrap, seed=seed))
    return {"mae": float(error.mean()), "mae_ci_low": _clean(low), "mae_ci_high": _clean(high),
            "rmse": float(np.sqrt(((pred - target) ** 2).mean())),
            "r": float(np.corrcoef(pred, target)[0, 1]) if len(pred) > 2 else None,
            "mae_of_training_mean": float(np.abs(reference - target).mean()),
            "n": int(len(pred)), "patients": int(len(set(patients)))}


def subgroup_frame(frame: pd.DataFrame, columns: Sequence[str], age_bands: Sequence[float],
                   index: Sequence[str]) -> pd.DataFrame:
    """The group columns of a split's frame (``age`` cut into bands), indexed like the metrics' ids.

    Columns the data does not have are left out (a folder dataset has no sex or view).
    """
    from ..datasets.metadata import age_bands as cut

    out = {}
    for column in dict.fromkeys(columns):
        if column not in frame.columns:
            continue
        values = frame[column]
        if column == "age":
            values = cut(values.reset_index(drop=True), age_bands)
        values = pd.Series(np.where(pd.isna(values), None, values.astype(str)), dtype=object)
        if values.replace({"": None, "UNKNOWN": None}).dropna().empty:
            continue
        out[column] = values.to_numpy()
    return pd.DataFrame(out, index=pd.Index([str(i) for i in index]))


def subgroup_metrics(evaluation: Any, groups: pd.DataFrame, *, n_bootstrap: int, seed: int = 0) -> dict[str, Any]:
    """Validation AUC per group of each column, for the card: mean and per label, with patient-level CIs."""
    from ..evaluate.subgroups import evaluate_subgroups

    result = evaluate_subgroups(evaluation.scores, evaluation.labels, groups, patients=evaluation.patients,
                                n_bootstrap=n_bootstrap, seed=seed)
    out: dict[str, Any] = {}
    for row in result.table.to_dict("records"):
        entry = out.setdefault(row["column"], {}).setdefault(row["group"], {
            "images": int(row["n_images"]), "patients": int(row["n_patients"]), "auc": {}})
        values = {"auc": _clean(row["auc"]), "ci_low": _clean(row["auc_ci_low"]), "ci_high": _clean(row["auc_ci_high"]),
                  "n_pos": int(row["n_pos"]), "n_neg": int(row["n_neg"])}
        if row["label"] == "mean":
            entry["auc_mean"], entry["auc_mean_ci"] = values["auc"], [values["ci_low"], values["ci_high"]]
        else:
            entry["auc"][row["label"]] = values
    for row in result.gaps[result.gaps["label"] == "mean"].to_dict("records"):
        out[row["column"]][row["group"]]["gap_to_rest"] = {
            "gap": _clean(row["gap"]), "ci": [_clean(row["gap_ci_low"]), _clean(row["gap_ci_high"])],
            "p_value": _clean(row["p_value"])}
    return out


def subgroup_regression(pred: np.ndarray, target: np.ndarray, patients: Sequence[str] | np.ndarray, groups: pd.DataFrame, *,
                        reference: float, n_bootstrap: int, seed: int = 0) -> dict[str, Any]:
    """:func:`regression_metrics` on the images of each group of each column."""
    out: dict[str, Any] = {}
    ids = np.asarray([str(p) for p in patients], dtype=object)
    for column in groups.columns:
        values = groups[column].to_numpy()
        for g in sorted({str(v) for v in values if v is not None}):
            rows = values == g
            if rows.sum() < 2:
                continue
            out.setdefault(column, {})[g] = regression_metrics(pred[rows], target[rows], ids[rows],
                                                               reference=reference, n_bootstrap=n_bootstrap, seed=seed)
    return out
