"""Score predictions against labels: the one function every label source feeds.

``evaluate_predictions`` takes two frames indexed by image id (predictions and labels,
one float column per label) so that any adapter - a CSV, NIH's Data_Entry file, or a
``cxrkit.datasets`` split later - plugs in without this module knowing about files.
It matches ids, picks the labels both sides have, and returns every number the
report needs; ``compare_predictions`` does the paired DeLong comparison.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..labels import PATHOLOGIES
from .bootstrap import BootstrapCI, bootstrap_auc
from .delong import delong_test
from .errors import EvaluationError, LabelColumnMissing, NoOverlap
from .metrics import THRESHOLD_METHODS, binary_metrics
from .multiclass import MulticlassResult, multiclass_metrics, true_classes

__all__ = ["METRICS_COLUMNS", "COMPARE_COLUMNS", "Evaluation", "evaluate_predictions", "compare_predictions"]

log = logging.getLogger(__name__)

METRICS_COLUMNS = (
    "label", "auc", "auc_ci_low", "auc_ci_high", "n_pos", "n_neg",
    "threshold", "sensitivity", "specificity", "ppv", "npv", "f1",
)
COMPARE_COLUMNS = ("label", "auc_a", "auc_b", "diff", "z", "p_value", "n")
TASKS = ("multilabel", "multiclass")
_NOT_IN_LABELS = "no such column in the labels"
_UNTRAINED = "no predictions (output not trained, or every cell empty)"


@dataclass
class Evaluation:
    """Everything measured: the ``metrics.csv`` table plus the aligned data behind it (for plots)."""

    table: pd.DataFrame
    labels: pd.DataFrame  # matched ids x evaluated labels (1/0/NaN)
    scores: pd.DataFrame  # same ids and columns
    patients: pd.Series | None
    threshold_method: str
    bootstrap: BootstrapCI | None
    seed: int
    n_prediction_ids: int
    n_label_ids: int
    skipped_labels: dict[str, str] = field(default_factory=dict)  # label -> why it was not scored
    multiclass: MulticlassResult | None = None

    @property
    def n_images(self) -> int:
        return len(self.labels)


def _check_unique(index: pd.Index, what: str) -> None:
    if index.has_duplicates:
        dup = index[index.duplicated()].unique()
        raise EvaluationError(f"{what} hold {len(dup)} duplicated image id(s), e.g. {', '.join(map(str, dup[:3]))}")


def _match_ids(predictions: pd.DataFrame, labels: pd.DataFrame, what: str = "predictions") -> pd.Index:
    _check_unique(predictions.index, what)
    _check_unique(labels.index, "labels")
    predictions.index = predictions.index.map(str)
    labels.index = labels.index.map(str)
    ids = predictions.index.intersection(labels.index).sort_values()
    if len(ids) == 0:
        raise NoOverlap(list(predictions.index), list(labels.index), what)
    return ids


def _standard_order(names: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(PATHOLOGIES)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), list(names).index(n)))


def _pick_labels(
    scores: pd.DataFrame, labels: pd.DataFrame, wanted: Sequence[str] | None
) -> tuple[list[str], dict[str, str]]:
    """Labels to score, and those skipped with the reason (shown in report.md, never silent)."""
    if wanted:
        for where, frame in (("predictions", scores), ("labels", labels)):
            missing = [w for w in wanted if w not in frame.columns]
            if missing:
                raise LabelColumnMissing(missing, where, list(frame.columns))
        return list(wanted), {}
    skipped: dict[str, str] = {}
    chosen = []
    for name in scores.columns:
        if scores[name].isna().all():
            skipped[name] = _UNTRAINED
        elif name not in labels.columns:
            skipped[name] = _NOT_IN_LABELS
        else:
            chosen.append(name)
    if not chosen:
        raise LabelColumnMissing(
            [n for n in scores.columns if not scores[n].isna().all()] or list(scores.columns), "labels",
            list(labels.columns))
    for name, why in skipped.items():
        (log.warning if why == _NOT_IN_LABELS else log.debug)("not scoring %s: %s", name, why)
    return _standard_order(chosen), skipped


def _mean_row(rows: list[dict]) -> dict:
    """Macro means over labels with a defined AUC; counts are summed over the same labels."""
    valid = [r for r in rows if not math.isnan(r["auc"])]
    out: dict = {"label": "mean"}
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv", "f1"):
        values = [r[key] for r in valid if not math.isnan(r[key])]
        out[key] = float(np.mean(values)) if values else math.nan
    out["n_pos"] = int(sum(r["n_pos"] for r in valid))
    out["n_neg"] = int(sum(r["n_neg"] for r in valid))
    out["threshold"] = math.nan
    return out


def evaluate_predictions(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    patients: pd.Series | None = None,
    label_names: Sequence[str] | None = None,
    threshold_method: str = "youden",
    thresholds: Mapping[str, float] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    task: str = "multilabel",
) -> Evaluation:
    """Per-label AUC with bootstrap CI, threshold and operating metrics, plus the mean row.

    ``predictions`` and ``labels``: frames indexed by image id (file name), one float
    column per label; labels 1/0/NaN (NaN = unknown, masked per label). ``patients``
    (indexed by id) switches the bootstrap to patient-level; an image without one is its
    own patient. ``thresholds`` (label -> value, e.g. chosen on validation) replaces
    ``threshold_method`` for the labels it names. ``n_bootstrap=0`` skips the CIs.
    ``task="multiclass"`` also computes accuracy and a confusion matrix, reading each
    label row as one-hot.
    """
    if threshold_method not in THRESHOLD_METHODS:
        raise EvaluationError(f"threshold method must be one of {', '.join(THRESHOLD_METHODS)}, got {threshold_method!r}")
    if task not in TASKS:
        raise EvaluationError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    predictions, labels = predictions.copy(), labels.copy()
    ids = _match_ids(predictions, labels)
    names, skipped = _pick_labels(predictions.loc[ids], labels, label_names)
    y = labels.loc[ids, names].astype(float)
    s = predictions.loc[ids, names].astype(float)
    groups = None
    if patients is not None:
        patients = patients.copy()
        patients.index = patients.index.map(str)
        groups = patients.reindex(ids)
        groups = groups.where(groups.notna(), pd.Series("image:" + ids, index=ids)).astype(str)
    thresholds = dict(thresholds or {})
    try:
        rows = [
            binary_metrics(name, y[name].to_numpy(), s[name].to_numpy(), method=threshold_method,
                           threshold=thresholds.get(name)).as_dict()
            for name in names
        ]
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    rows.append(_mean_row(rows))
    table = pd.DataFrame(rows)
    ci = None
    if n_bootstrap > 0:
        ci = bootstrap_auc(y.to_numpy(), s.to_numpy(), names, groups=None if groups is None else groups.tolist(),
                           n_boot=n_bootstrap, seed=seed, level=level)
        table["auc_ci_low"] = [ci.low.get(r, math.nan) for r in table["label"]]
        table["auc_ci_high"] = [ci.high.get(r, math.nan) for r in table["label"]]
        undefined = table["auc"].isna()
        table.loc[undefined, ["auc_ci_low", "auc_ci_high"]] = math.nan
    else:
        table["auc_ci_low"] = math.nan
        table["auc_ci_high"] = math.nan
    table = table[list(METRICS_COLUMNS)]
    multi = None
    if task == "multiclass":
        try:
            multi = multiclass_metrics(true_classes(y), s)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from exc
    return Evaluation(
        table=table, labels=y, scores=s, patients=groups, threshold_method=threshold_method, bootstrap=ci,
        seed=seed, n_prediction_ids=len(predictions), n_label_ids=len(labels), skipped_labels=skipped,
        multiclass=multi,
    )


def compare_predictions(
    a: pd.DataFrame, b: pd.DataFrame, labels: pd.DataFrame, *, label_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Paired DeLong test per label on the images scored by both A and B (and labelled).

    Returns a frame with columns ``label, auc_a, auc_b, diff, z, p_value, n``, where n
    counts the images used for that label (label and both scores known).
    """
    a, b, labels = a.copy(), b.copy(), labels.copy()
    _check_unique(a.index, "predictions A")
    _check_unique(b.index, "predictions B")
    a.index, b.index = a.index.map(str), b.index.map(str)
    both = a.index.intersection(b.index)
    if len(both) == 0:
        raise NoOverlap(list(a.index), list(b.index), "predictions A (vs predictions B; shown as 'labels')")
    ids = _match_ids(a.loc[both], labels, "images in both A and B")
    if label_names:
        names, _ = _pick_labels(b.loc[ids], labels, label_names)
        names, _ = _pick_labels(a.loc[ids], labels, label_names)
    else:
        common = a.loc[ids].loc[:, [c for c in a.columns if c in b.columns]]
        names, _ = _pick_labels(common.loc[:, ~b.loc[ids, common.columns].isna().all()], labels, None)
    rows = []
    for name in names:
        r = delong_test(labels.loc[ids, name].to_numpy(float), a.loc[ids, name].to_numpy(float),
                        b.loc[ids, name].to_numpy(float))
        rows.append(dict(label=name, auc_a=r.auc_a, auc_b=r.auc_b, diff=r.diff, z=r.z, p_value=r.p_value, n=r.n))
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
