"""Per-label binary metrics: AUROC, an operating threshold, and the counts at that threshold.

Why this module exists rather than a one-liner around torchmetrics: a label with no
positives (or no negatives) has no AUROC. torchmetrics reports 0.0 for it and averages
that in; we report NaN with ``n_pos``/``n_neg`` so the reader sees why, and keep it
out of the mean. Unknown labels (NaN) and missing predictions (NaN) are masked per
label, never imputed.

Thresholds are chosen on the data given, so run this on a *validation* split and carry
the thresholds to the test split (``threshold=``); choosing them on test flatters the
result, which is what covid-cxr did and what we don't.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from .errors import EvaluationError

__all__ = [
    "THRESHOLD_METHODS",
    "LabelMetrics",
    "valid_pairs",
    "auroc",
    "operating_points",
    "choose_threshold",
    "metrics_at_threshold",
    "binary_metrics",
]

#: ``youden``: max sensitivity + specificity - 1; ``f1``: max F1; ``ppv80``: the most
#: sensitive threshold whose PPV is at least 0.8 (NaN when none reaches it).
THRESHOLD_METHODS = ("youden", "f1", "ppv80")


@dataclass(frozen=True)
class LabelMetrics:
    """One row of ``metrics.csv`` (CIs are added by the bootstrap)."""

    label: str
    auc: float
    n_pos: int
    n_neg: int
    threshold: float
    sensitivity: float
    specificity: float
    ppv: float
    npv: float
    f1: float

    def as_dict(self) -> dict:
        return asdict(self)


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else math.nan


def valid_pairs(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop rows whose label or score is NaN; labels become 0/1 ints.

    Raises ``ValueError`` for a label that is not 0, 1 or NaN: a 0.5 or -1 (CheXpert's
    "uncertain") must be resolved by the dataset adapter, not guessed here.
    """
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(score))
    y, score = y[keep], score[keep]
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise EvaluationError(f"labels must be 0, 1 or NaN; found {sorted(set(y[bad].tolist()))[:5]}")
    return y.astype(np.int8), score


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC by scikit-learn on the valid pairs; NaN when one class is absent."""
    y, score = valid_pairs(y, score)
    if y.size == 0 or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, score))


def operating_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct score as a threshold (descending), with TP and FP counts at ``score >= t``.

    Computed in one sort + cumulative sum, the way ``sklearn.metrics.roc_curve`` does,
    but keeping every threshold so the three selection rules see the same candidates.
    """
    y, score = valid_pairs(y, score)
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(yy)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return s[last_of_tie], tp.astype(np.int64), fp.astype(np.int64)


def choose_threshold(y: np.ndarray, score: np.ndarray, method: str = "youden") -> float:
    """Pick an operating threshold on these data; ties go to the higher (more specific) threshold."""
    if method not in THRESHOLD_METHODS:
        raise EvaluationError(f"threshold method must be one of {THRESHOLD_METHODS}, got {method!r}")
    thresholds, tp, fp = operating_points(y, score)
    if thresholds.size == 0:
        return math.nan
    n_pos, n_neg = tp[-1], fp[-1]
    if method == "youden":
        if n_pos == 0 or n_neg == 0:
            return math.nan
        j = tp / n_pos - fp / n_neg
        return float(thresholds[int(np.argmax(j))])
    if method == "f1":
        if n_pos == 0:
            return math.nan
        f1 = 2 * tp / (tp + fp + n_pos)  # = 2PR/(P+R), without 0/0
        return float(thresholds[int(np.argmax(f1))])
    ppv = tp / (tp + fp)
    ok = np.flatnonzero((ppv >= 0.8) & (tp > 0))
    return float(thresholds[ok[-1]]) if ok.size else math.nan


def metrics_at_threshold(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and F1 when ``score >= threshold`` means positive."""
    y, score = valid_pairs(y, score)
    if math.isnan(threshold):
        return dict(sensitivity=math.nan, specificity=math.nan, ppv=math.nan, npv=math.nan, f1=math.nan)
    pred = score >= threshold
    pos = y == 1
    tp = int(np.sum(pred & pos))
    fp = int(np.sum(pred & ~pos))
    fn = int(np.sum(~pred & pos))
    tn = int(np.sum(~pred & ~pos))
    return dict(
        sensitivity=_div(tp, tp + fn),
        specificity=_div(tn, tn + fp),
        ppv=_div(tp, tp + fp),
        npv=_div(tn, tn + fn),
        f1=_div(2 * tp, 2 * tp + fp + fn),
    )


def binary_metrics(
    label: str, y: np.ndarray, score: np.ndarray, *, method: str = "youden", threshold: float | None = None
) -> LabelMetrics:
    """All point metrics of one label; ``threshold`` (e.g. from validation) overrides ``method``."""
    yv, sv = valid_pairs(y, score)
    n_pos = int(yv.sum())
    n_neg = int(yv.size - n_pos)
    t = float(threshold) if threshold is not None else choose_threshold(yv, sv, method)
    return LabelMetrics(label=label, auc=auroc(yv, sv), n_pos=n_pos, n_neg=n_neg, threshold=t,
                        **metrics_at_threshold(yv, sv, t))
