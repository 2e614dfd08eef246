"""Percentile bootstrap confidence intervals for per-label AUCs, patient-aware.

Images of one patient are correlated (follow-ups, the same disease seen twice), so
resampling images pretends to more independent evidence than there is and gives CIs
that are too narrow. When patient ids are known we resample *patients* with
replacement and take all of their images. Each replicate reuses one set of draws for
every label, so the CI of the mean AUC is a CI of the same mean. The random stream
comes only from ``numpy.random.default_rng(seed)``: same seed, same CIs, nothing
global touched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .errors import EvaluationError

__all__ = ["BootstrapCI", "bootstrap_indices", "bootstrap_mean_ci", "bootstrap_auc", "auc_columns", "fast_auc"]


@dataclass(frozen=True)
class BootstrapCI:
    """Per-label CI (``low``/``high`` indexed by label, plus the ``mean`` row) and the replicates."""

    low: pd.Series
    high: pd.Series
    replicates: pd.DataFrame  # one row per replicate, one column per label + "mean"; NaN = undefined
    n_boot: int
    level: float
    patient_level: bool


def auc_columns(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC (midranks, ties 1/2) of every column at once; NaN where a class is absent.

    Equal to scikit-learn's ``roc_auc_score`` per column, with rows whose label or score
    is NaN masked per column, in one ranking call: cheap enough for 1,000 replicates x 18
    labels.
    """
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    scores = np.asarray(scores, dtype=float).reshape(len(y), -1)
    known = ~(np.isnan(y) | np.isnan(scores))
    if known.all():  # the common case; scipy's NaN-omitting path is several times slower
        ranks = rankdata(np.ascontiguousarray(scores.T), axis=1).T  # rows contiguous: faster sorts
    else:
        ranks = rankdata(np.where(known, scores, np.nan), axis=0, nan_policy="omit")
    pos = known & (y == 1)
    m = pos.sum(axis=0)
    n = known.sum(axis=0) - m
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (np.where(pos, ranks, 0.0).sum(axis=0) - m * (m + 1) / 2.0) / (m * n)
    return np.where((m > 0) & (n > 0), auc, np.nan)


def fast_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Single-label :func:`auc_columns`."""
    return float(auc_columns(np.asarray(y, float)[:, None], np.asarray(score, float)[:, None])[0])


def bootstrap_indices(
    n_items: int, groups: Sequence[object] | None = None, *, n_boot: int = 1000, seed: int = 0
) -> Iterator[np.ndarray]:
    """Yield ``n_boot`` row-index arrays, resampling groups (patients) when ``groups`` is given.

    With groups, each replicate draws as many patients as there are, with replacement,
    and concatenates all rows of each drawn patient: a patient is always whole.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_boot):
            yield rng.integers(0, n_items, size=n_items)
        return
    codes, _ = pd.factorize(pd.Series(list(groups), dtype=object), sort=True)
    if codes.size != n_items:
        raise EvaluationError(f"{codes.size} patient ids for {n_items} rows")
    order = np.argsort(codes, kind="mergesort")
    counts = np.bincount(codes)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    n_groups = counts.size
    for _ in range(n_boot):
        chosen = rng.integers(0, n_groups, size=n_groups)
        sizes = counts[chosen]
        # rows of chosen patient g are order[starts[g] : starts[g] + counts[g]]
        offsets = np.repeat(starts[chosen] - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
        yield order[np.arange(sizes.sum()) + offsets]


def bootstrap_mean_ci(values: np.ndarray, resamples: Iterable[np.ndarray], level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over row resamples (e.g. :func:`bootstrap_indices`);
    ``(nan, nan)`` when there are none."""
    values = np.asarray(values, dtype=np.float64)
    means = [values[rows].mean() for rows in resamples]
    if not means:
        return math.nan, math.nan
    tail = round(100 * (1 - level) / 2, 10)  # 2.5 exactly for 95 %, not 2.5000000000000022
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_auc(
    y: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
    *,
    groups: Sequence[object] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """Percentile CI of each label's AUC and of their mean, from ``n_boot`` replicates.

    ``y`` and ``scores`` are (n_images, n_labels) with NaN for unknown. A replicate in
    which a label lacks positives or negatives gives NaN for it and is left out of that
    label's percentiles (and out of the mean for that replicate), never counted as 0.
    """
    y = np.asarray(y, dtype=float)
    scores = np.asarray(scores, dtype=float)
    labels = list(labels)
    reps = np.full((n_boot, len(labels)), np.nan)
    for b, idx in enumerate(bootstrap_indices(y.shape[0], groups, n_boot=n_boot, seed=seed)):
        reps[b] = auc_columns(y[idx], scores[idx])
    frame = pd.DataFrame(reps, columns=labels)
    # The mean is over the labels whose AUC is defined on the full data, as for the point
    # estimate; a replicate where one of them is undefined has no comparable mean (NaN).
    full = auc_columns(y, scores)
    defined = [lab for j, lab in enumerate(labels) if not np.isnan(full[j])]
    frame["mean"] = frame[defined].mean(axis=1, skipna=False) if defined else np.nan
    alpha = (1 - level) / 2
    low = frame.quantile(alpha, interpolation="linear")
    high = frame.quantile(1 - alpha, interpolation="linear")
    return BootstrapCI(low=low, high=high, replicates=frame, n_boot=n_boot, level=level,
                       patient_level=groups is not None)
