"""DeLong's test for two correlated AUCs, by the fast midrank algorithm of Sun & Xu (2014).

Two models scored on the *same* images make correlated errors; comparing their AUCs
as if independent (or by overlapping bootstrap CIs) wastes power and can mislead.
DeLong et al. (1988) give the covariance of the two empirical AUCs from the
"structural components" of each case; Sun & Xu (IEEE SPL 21(11), 2014) showed they
follow from three midrankings, O(n log n) instead of the O(m·n) pair table. Ties
count one half, exactly as in the Mann–Whitney AUC, so the AUCs returned here equal
scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm, rankdata

from .errors import EvaluationError

__all__ = ["DeLongResult", "delong_covariance", "delong_test"]


@dataclass(frozen=True)
class DeLongResult:
    """Paired comparison of model A and B on one label (``diff = auc_a - auc_b``)."""

    auc_a: float
    auc_b: float
    diff: float
    z: float
    p_value: float
    n: int
    n_pos: int
    n_neg: int
    var_diff: float

    def as_dict(self) -> dict:
        return asdict(self)


def delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and DeLong covariance matrix of ``k`` score vectors on the same cases.

    ``y`` is 0/1 of length n (no NaN), ``scores`` has shape (k, n). Needs at least two
    positives and two negatives (a sample covariance of fewer is undefined).
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if scores.shape[1] != y.size:
        raise EvaluationError(f"scores have {scores.shape[1]} cases but y has {y.size}")
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise EvaluationError(f"DeLong needs >= 2 positives and >= 2 negatives, got {m} and {n}")
    tx = rankdata(pos, axis=1)  # midranks within the positives
    ty = rankdata(neg, axis=1)  # midranks within the negatives
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # midranks in the pooled sample
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v10 = (tz[:, :m] - tx) / n  # per positive: share of negatives it outranks (ties 1/2)
    v01 = 1.0 - (tz[:, m:] - ty) / m  # per negative: share of positives that outrank it
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_test(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> DeLongResult:
    """Two-sided DeLong test of AUC(A) = AUC(B) on the cases where y, A and B are all known.

    Identical predictions give z = 0 and p = 1 (zero variance, zero difference). With
    fewer than two cases of either class the AUCs are reported where defined and z, p
    are NaN, because no honest variance exists.
    """
    y = np.asarray(y, dtype=float)
    a = np.asarray(score_a, dtype=float)
    b = np.asarray(score_b, dtype=float)
    keep = ~(np.isnan(y) | np.isnan(a) | np.isnan(b))
    y, a, b = y[keep].astype(np.int8), a[keep], b[keep]
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos < 2 or n_neg < 2:
        from .metrics import auroc

        auc_a, auc_b = auroc(y, a), auroc(y, b)
        return DeLongResult(auc_a, auc_b, auc_a - auc_b, math.nan, math.nan, int(y.size), n_pos, n_neg, math.nan)
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15 or abs(diff) < 1e-15:
        # identical rankings: the difference is exactly 0 with no spread; otherwise undefined
        z, p = (0.0, 1.0) if abs(diff) < 1e-15 else (math.nan, math.nan)
    else:
        z = diff / math.sqrt(var)
        p = float(2 * norm.sf(abs(z)))
    return DeLongResult(float(aucs[0]), float(aucs[1]), diff, z, p, int(y.size), n_pos, n_neg, var)
