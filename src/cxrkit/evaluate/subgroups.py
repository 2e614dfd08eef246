"""Per-subgroup AUCs, the gap between each group and the rest, and label rates by group.

A pooled AUC can hide that a model only works on one site, sex or draw of the data: the
NIH sample shipped with cxrkit is two draws, and a model can score well on the pooled
validation split by recognising which draw a film came from. Every number here is on the
images of one group value; CIs and the gap test resample *patients* of the whole table
jointly (a patient with films in two groups, e.g. one AP and one PA, stays correlated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bootstrap import auc_columns, bootstrap_indices

__all__ = ["SubgroupResult", "SUBGROUP_COLUMNS", "GAP_COLUMNS", "evaluate_subgroups", "label_rates",
           "differing_labels", "group_summary", "describe_gaps"]

SUBGROUP_COLUMNS = ("column", "group", "label", "auc", "auc_ci_low", "auc_ci_high", "n_pos", "n_neg",
                    "n_images", "n_patients")
GAP_COLUMNS = ("column", "group", "label", "auc_group", "auc_rest", "gap", "gap_ci_low", "gap_ci_high", "p_value")


@dataclass(frozen=True)
class SubgroupResult:
    """``table``: AUC per (column, group, label) with CI, plus a ``mean`` row per group; ``gaps``:
    each group against all other images of its column, with a bootstrap CI and p-value;
    ``rates``: label prevalence per group and a chi-square p-value per label and column."""

    table: pd.DataFrame
    gaps: pd.DataFrame
    rates: pd.DataFrame
    columns: tuple[str, ...]
    n_bootstrap: int
    patient_level: bool


def _aucs(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`auc_columns`, NaN for every label when no image is left (an empty group in a replicate)."""
    return auc_columns(y, s) if len(y) else np.full(y.shape[1], np.nan)


def _mean_auc(aucs: np.ndarray, defined: np.ndarray) -> float:
    if not defined.any():
        return math.nan
    values = aucs[defined]
    return math.nan if np.isnan(values).any() else float(values.mean())


def _p_two_sided(replicates: np.ndarray) -> float:
    """Bootstrap p-value of "no gap": twice the smaller tail of the replicates around zero."""
    reps = replicates[np.isfinite(replicates)]
    if reps.size == 0:
        return math.nan
    return float(min(1.0, 2 * min((reps <= 0).mean(), (reps >= 0).mean())))


def evaluate_subgroups(scores: pd.DataFrame, labels: pd.DataFrame, groups: pd.DataFrame, *,
                       patients: pd.Series | None = None, n_bootstrap: int = 1000, seed: int = 0,
                       level: float = 0.95) -> SubgroupResult:
    """Subgroup AUCs for every column of ``groups`` (image ids x group values; NaN = no group).

    ``scores`` and ``labels`` are aligned frames (ids x labels) as held by
    :class:`~cxrkit.evaluate.Evaluation`; ``groups`` is reindexed to them. The ``mean`` row
    of a group averages the labels whose AUC is defined in that group; the mean gap uses the
    labels defined in both the group and the rest.
    """
    ids = labels.index
    groups = groups.reindex(ids)
    y = labels.to_numpy(dtype=float)
    s = scores[labels.columns].to_numpy(dtype=float)
    names = list(labels.columns)
    pids = None if patients is None else patients.reindex(ids).astype(str).tolist()
    alpha = (1 - level) / 2
    rows, gap_rows = [], []
    for column in groups.columns:
        values = groups[column]
        levels = sorted(values.dropna().astype(str).unique())
        if not levels:
            continue
        member = {g: (values.astype(str) == g).to_numpy() & values.notna().to_numpy() for g in levels}
        known = values.notna().to_numpy()
        full = {g: _aucs(y[m], s[m]) for g, m in member.items()}
        rest = {g: _aucs(y[known & ~m], s[known & ~m]) for g, m in member.items()}
        reps = {g: np.full((n_bootstrap, len(names)), np.nan) for g in levels}
        rest_reps = {g: np.full((n_bootstrap, len(names)), np.nan) for g in levels}
        for b, idx in enumerate(bootstrap_indices(len(ids), pids, n_boot=n_bootstrap, seed=seed)):
            for g, m in member.items():
                inside, outside = idx[m[idx]], idx[known[idx] & ~m[idx]]
                reps[g][b] = _aucs(y[inside], s[inside])
                if len(levels) > 1:
                    rest_reps[g][b] = _aucs(y[outside], s[outside])
        for g, m in member.items():
            n_images = int(m.sum())
            n_patients = int(len(set(np.asarray(pids, dtype=object)[m]))) if pids is not None else n_images
            defined = ~np.isnan(full[g])
            for j, name in enumerate(names):
                yy = y[m, j]
                low, high = _percentiles(reps[g][:, j], alpha) if defined[j] else (math.nan, math.nan)
                rows.append(dict(column=column, group=g, label=name, auc=float(full[g][j]), auc_ci_low=low,
                                 auc_ci_high=high, n_pos=int(np.nansum(yy == 1)), n_neg=int(np.nansum(yy == 0)),
                                 n_images=n_images, n_patients=n_patients))
            mean_reps = np.array([_mean_auc(r, defined) for r in reps[g]])
            low, high = _percentiles(mean_reps, alpha)
            rows.append(dict(column=column, group=g, label="mean", auc=_mean_auc(full[g], defined), auc_ci_low=low,
                             auc_ci_high=high, n_pos=int(np.nansum(y[m] == 1)), n_neg=int(np.nansum(y[m] == 0)),
                             n_images=n_images, n_patients=n_patients))
            if len(levels) < 2:
                continue
            both = defined & ~np.isnan(rest[g])
            for j, name in enumerate([*names, "mean"]):
                if name == "mean":
                    if not both.any():
                        continue
                    a, r = _mean_auc(full[g], both), _mean_auc(rest[g], both)
                    diff = np.array([_mean_auc(p, both) - _mean_auc(q, both) for p, q in zip(reps[g], rest_reps[g], strict=True)])
                elif both[j]:
                    a, r = float(full[g][j]), float(rest[g][j])
                    diff = reps[g][:, j] - rest_reps[g][:, j]
                else:
                    continue
                low, high = _percentiles(diff, alpha)
                gap_rows.append(dict(column=column, group=g, label=name, auc_group=a, auc_rest=r, gap=a - r,
                                     gap_ci_low=low, gap_ci_high=high, p_value=_p_two_sided(diff)))
    table = pd.DataFrame(rows, columns=list(SUBGROUP_COLUMNS))
    gaps = pd.DataFrame(gap_rows, columns=list(GAP_COLUMNS))
    return SubgroupResult(table=table, gaps=gaps, rates=label_rates(labels, groups), columns=tuple(groups.columns),
                          n_bootstrap=n_bootstrap, patient_level=pids is not None)


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def label_rates(labels: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Prevalence of each label in each group, with a chi-square test of "same rate in every group".

    Columns: ``column, label, p_value`` and one ``rate:<group>`` per group value. A label
    whose rate differs strongly between groups is what a shortcut can exploit: a model
    that recognises the group then "predicts" the label without seeing the finding.
    """
    from scipy.stats import chi2_contingency

    out = []
    groups = groups.reindex(labels.index)
    for column in groups.columns:
        values = groups[column]
        levels = sorted(values.dropna().astype(str).unique())
        for name in labels.columns:
            yy = labels[name]
            row: dict = {"column": column, "label": name}
            counts = []
            for g in levels:
                inside = yy[(values.astype(str) == g) & values.notna()].dropna()
                row[f"rate:{g}"] = float(inside.mean()) if len(inside) else math.nan
                counts.append([int((inside == 1).sum()), int((inside == 0).sum())])
            table = np.array(counts)
            usable = table[table.sum(axis=1) > 0]
            row["p_value"] = math.nan
            if len(usable) > 1 and (usable.sum(axis=0) > 0).all():
                row["p_value"] = float(chi2_contingency(usable)[1])
            out.append(row)
    return pd.DataFrame(out)


def differing_labels(rates: pd.DataFrame, column: str, alpha: float = 0.001) -> list[str]:
    """Labels whose rate differs between the groups of ``column`` at ``alpha`` (chi-square)."""
    part = rates[(rates["column"] == column) & (rates["p_value"] < alpha)]
    return [str(n) for n in part["label"]]


def group_summary(result: SubgroupResult, column: str) -> list[dict]:
    """The ``mean`` rows of one column, for cards and console tables."""
    part = result.table[(result.table["column"] == column) & (result.table["label"] == "mean")]
    return part.to_dict("records")


def describe_gaps(result: SubgroupResult, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Gaps whose CI excludes zero (the groups genuinely differ), strongest first."""
    gaps = result.gaps
    if labels is not None:
        gaps = gaps[gaps["label"].isin(list(labels))]
    significant = gaps[(gaps["gap_ci_low"] > 0) | (gaps["gap_ci_high"] < 0)]
    return significant.reindex(significant["gap"].abs().sort_values(ascending=False).index)
