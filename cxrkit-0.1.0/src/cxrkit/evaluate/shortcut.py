"""Shortcut check: can a linear probe tell the subgroup from what the model sees?

If a logistic regression on the model's pooled features (or on the raw downsampled
pixels) recognises which site / draw / scanner a film came from, and the label rates
differ between those groups, the model has an easy route to "predict" a finding by
recognising the group instead of the finding. That is how the NIH sample shipped here
misleads: one of its two draws kept only Pneumonia or No Finding films. The probe is
scored out of fold on a patient-grouped split (no patient in two folds), and its AUC
gets a patient-level bootstrap CI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .bootstrap import bootstrap_indices
from .errors import EvaluationError

__all__ = ["ProbeResult", "shortcut_probe", "shortcut_warning", "PROBE_AUC_WARNING"]

#: A probe at or above this AUC, and significantly above chance, recognises the group well
#: enough to be a shortcut ("acceptable discrimination" starts at 0.7 in the usual reading of
#: AUCs, Hosmer & Lemeshow). The measured probe is a lower bound: a model can use the group
#: through nonlinear features a linear probe does not see.
PROBE_AUC_WARNING = 0.70


@dataclass(frozen=True)
class ProbeResult:
    """Out-of-fold AUC of a linear probe predicting ``column`` (macro one-vs-rest with >2 groups)."""

    column: str
    inputs: str  # "features" or "pixels"
    auc: float
    ci_low: float
    ci_high: float
    n_images: int
    n_patients: int
    folds: int
    groups: dict[str, int]  # images per group
    differing_labels: list[str] = field(default_factory=list)  # label rates differ between groups
    warning: str | None = None

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}


def _auc(y: np.ndarray, proba: np.ndarray, classes: int) -> float:
    from sklearn.metrics import roc_auc_score

    try:
        if classes == 2:
            return float(roc_auc_score(y, proba[:, 1]))
        return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(classes))))
    except ValueError:  # a resample without every class
        return math.nan


def shortcut_probe(inputs: np.ndarray, groups: Sequence[object], patients: Sequence[object] | None = None, *,
                   column: str = "group", kind: str = "features", folds: int = 5, n_bootstrap: int = 1000,
                   seed: int = 0, level: float = 0.95) -> ProbeResult:
    """Fit a standardised L2 logistic regression per fold and score its held-out predictions.

    ``inputs``: (N, D) features or flattened pixels; ``groups``: the value to recognise per
    image (None/NaN rows are left out); ``patients``: keeps each patient's films in one fold.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(inputs, dtype=np.float64)
    values = pd.Series(list(groups), dtype=object)
    keep = values.notna().to_numpy()
    x, values = x[keep], values[keep].astype(str).to_numpy()
    pids = np.asarray([str(p) for p in patients], dtype=object)[keep] if patients is not None else \
        np.asarray([f"image:{i}" for i in range(len(values))], dtype=object)
    names, y = np.unique(values, return_inverse=True)
    counts = {str(n): int((y == i).sum()) for i, n in enumerate(names)}
    if len(names) < 2:
        raise EvaluationError(f"shortcut check: column {column!r} has one group only ({', '.join(names)}); "
                              "it needs two or more")
    smallest = min(counts.values())
    folds = int(min(folds, smallest, len(set(pids))))
    if folds < 2:
        raise EvaluationError(f"shortcut check: group sizes {counts} are too small for a cross-validated probe")
    proba = np.zeros((len(y), len(names)))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y, groups=pids):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        probe.fit(x[train], y[train])
        part = np.zeros((len(test), len(names)))
        part[:, probe[-1].classes_] = probe.predict_proba(x[test])
        proba[test] = part
    auc = _auc(y, proba, len(names))
    reps = np.array([_auc(y[idx], proba[idx], len(names))
                     for idx in bootstrap_indices(len(y), list(pids), n_boot=n_bootstrap, seed=seed)])
    reps = reps[np.isfinite(reps)]
    alpha = (1 - level) / 2
    low, high = (np.quantile(reps, [alpha, 1 - alpha]) if reps.size else (math.nan, math.nan))
    return ProbeResult(column=column, inputs=kind, auc=auc, ci_low=float(low), ci_high=float(high),
                       n_images=int(len(y)), n_patients=int(len(set(pids))), folds=folds, groups=counts)


def shortcut_warning(probe: ProbeResult, differing: Sequence[str]) -> ProbeResult:
    """The probe with a warning attached when the group is easy to see *and* label rates differ by group."""
    easy = np.isfinite(probe.ci_low) and probe.ci_low > 0.5 and probe.auc >= PROBE_AUC_WARNING
    text = None
    if easy and differing:
        text = (f"Possible shortcut: a linear probe on the model's {probe.inputs} recognises {probe.column} with "
                f"AUC {probe.auc:.2f} (95 % CI {probe.ci_low:.2f}-{probe.ci_high:.2f}), and the rates of "
                f"{', '.join(differing)} differ between its groups. The pooled AUCs can reward recognising the "
                f"group instead of the finding: judge the model on the per-group AUCs, and validate on the group "
                f"you care about.")
    return ProbeResult(**{**probe.__dict__, "differing_labels": list(differing), "warning": text})
