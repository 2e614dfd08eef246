"""Evaluation figures as PNG: ROC and precision-recall per label, reliability, confusion matrix.

Figures are built on ``matplotlib.figure.Figure`` with an explicit Agg canvas rather
than through ``pyplot``: Agg renders headless (servers, CI), and because no backend is
selected and no global figure registry is touched, importing this module changes
nothing for a notebook or GUI that already uses matplotlib. Each function writes one
file and returns its path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

from .metrics import metrics_at_threshold, valid_pairs

__all__ = ["slug", "plot_roc", "plot_pr", "plot_reliability", "plot_confusion", "plot_subgroups"]

_DPI = 100


def slug(label: str) -> str:
    """A file-name-safe form of a label ("Lung Lesion" -> "Lung_Lesion")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "label"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


def plot_roc(y: np.ndarray, score: np.ndarray, label: str, path: str | Path, *,
             auc: float | None = None, ci: tuple[float, float] | None = None, threshold: float | None = None) -> Path:
    """ROC curve with the chance diagonal and the chosen operating point."""
    y, score = valid_pairs(y, score)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    title = label
    if y.size and 0 < y.sum() < y.size:
        fpr, tpr, _ = roc_curve(y, score)
        text = "" if auc is None else f"AUC {auc:.3f}"
        if ci is not None and not any(np.isnan(ci)):
            text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
        ax.plot(fpr, tpr, lw=2, label=text or None)
        if threshold is not None and not np.isnan(threshold):
            m = metrics_at_threshold(y, score, threshold)
            ax.plot([1 - m["specificity"]], [m["sensitivity"]], "o", color="C3", label=f"threshold {threshold:.3g}")
        if text or threshold is not None:
            ax.legend(loc="lower right")
    else:
        title += " (one class only: no ROC)"
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.set_aspect("equal")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_pr(y: np.ndarray, score: np.ndarray, label: str, path: str | Path) -> Path:
    """Precision-recall curve; the prevalence line is what a random model scores."""
    y, score = valid_pairs(y, score)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    title = label
    if y.size and y.sum() > 0:
        precision, recall, _ = precision_recall_curve(y, score)
        ap = average_precision_score(y, score)
        ax.step(recall, precision, where="post", lw=2, label=f"AP {ap:.3f}")
        prevalence = y.mean()
        ax.axhline(prevalence, ls="--", color="grey", lw=1, label=f"prevalence {prevalence:.3f}")
        ax.legend(loc="upper right")
    else:
        title += " (no positives: no PR curve)"
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title)
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_reliability(labels: pd.DataFrame, scores: pd.DataFrame, path: str | Path, *, bins: int = 10) -> Path:
    """Reliability diagram (mean score vs observed frequency per score bin) and score histogram.

    Named for what it draws, not "calibration": in cxrkit a *calibrated* score is one rescaled
    to the model's operating point (:mod:`cxrkit.models.calibration`), which this plot tests
    as a probability and usually finds is not one.

    All labels are pooled into one curve (thin lines per label when there are few), so
    the plot stays readable with 18 labels. Scores outside [0, 1] are clipped for binning.
    """
    y = labels.to_numpy(float)
    s = scores.to_numpy(float)
    edges = np.linspace(0, 1, bins + 1)
    fig = Figure(figsize=(5.5, 6.5))
    ax, hist = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="scores that are probabilities")

    def curve(yy: np.ndarray, ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = ~(np.isnan(yy) | np.isnan(ss))
        yy, ss = yy[keep], np.clip(ss[keep], 0, 1)
        which = np.clip(np.digitize(ss, edges[1:-1]), 0, bins - 1)
        counts = np.bincount(which, minlength=bins)
        filled = counts > 0
        mean_s = np.bincount(which, ss, minlength=bins)[filled] / counts[filled]
        freq = np.bincount(which, yy, minlength=bins)[filled] / counts[filled]
        return mean_s, freq

    if labels.shape[1] <= 6:
        for j, name in enumerate(labels.columns):
            ax.plot(*curve(y[:, j], s[:, j]), marker=".", lw=1, alpha=0.7, label=name)
    ax.plot(*curve(y.ravel(), s.ravel()), marker="o", color="black", lw=2, label="all labels")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), ylabel="observed frequency", title="Reliability")
    ax.legend(loc="upper left", fontsize="small")
    known = ~(np.isnan(y) | np.isnan(s))
    hist.hist(np.clip(s[known], 0, 1), bins=edges, color="C0")
    hist.set(xlabel="predicted score", ylabel="count")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_confusion(confusion: pd.DataFrame, path: str | Path, *, title: str = "Confusion matrix") -> Path:
    """Counts with row-normalised shading (rows = true class), so rare classes stay visible."""
    counts = confusion.to_numpy()
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = counts.shape[0]
    fig = Figure(figsize=(1.2 * k + 2.5, 1.2 * k + 2))
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black")
    names: Sequence[str] = [str(c) for c in confusion.columns]
    ax.set_xticks(range(k), names, rotation=30, ha="right")
    ax.set_yticks(range(k), [str(c) for c in confusion.index])
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_subgroups(table: pd.DataFrame, column: str, path: str | Path) -> Path:
    """Forest plot of one column's groups: AUC and 95 % CI per label (and the mean), one colour per group."""
    part = table[table["column"] == column]
    groups = list(dict.fromkeys(part["group"]))
    labels = list(dict.fromkeys(part["label"]))
    labels = [name for name in labels if name != "mean"] + (["mean"] if "mean" in labels else [])
    fig = Figure(figsize=(6.5, 0.42 * len(labels) + 1.4))
    ax = fig.add_subplot()
    height = 0.8 / max(len(groups), 1)
    for k, group in enumerate(groups):
        rows = part[part["group"] == group].set_index("label")
        ys, xs, lo, hi = [], [], [], []
        for i, name in enumerate(labels):
            if name in rows.index and np.isfinite(rows.at[name, "auc"]):
                ys.append(len(labels) - 1 - i + (k - (len(groups) - 1) / 2) * height)
                xs.append(rows.at[name, "auc"])
                lo.append(rows.at[name, "auc"] - np.nan_to_num(rows.at[name, "auc_ci_low"], nan=rows.at[name, "auc"]))
                hi.append(np.nan_to_num(rows.at[name, "auc_ci_high"], nan=rows.at[name, "auc"]) - rows.at[name, "auc"])
        n = int(rows["n_images"].iloc[0]) if len(rows) else 0
        ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", ms=4, capsize=2, color=f"C{k}", label=f"{group} ({n} images)")
    ax.axvline(0.5, ls="--", color="grey", lw=1)
    ax.set_yticks(range(len(labels)), labels[::-1])
    ax.set(xlim=(0, 1), xlabel="AUC (95 % CI)", title=f"AUC by {column}")
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return _save(fig, Path(path))
