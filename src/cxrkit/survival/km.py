"""Kaplan–Meier curves by CXR-Age quartile, with the numbers at risk beneath.

A hazard ratio is an average over follow-up; the curves show whether the groups
separate early, late or cross (which would also show up in the proportional-hazards
test). The numbers at risk are drawn by us under the plot rather than with lifelines'
``add_at_risk_counts``, which works through ``pyplot``; like the evaluation plots, the
figure is a bare ``Figure`` on an Agg canvas, so importing this changes no global
matplotlib state. The same table is returned for ``km_at_risk.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .cohort import Cohort

if TYPE_CHECKING:  # lifelines is imported when curves are fitted, not with this module
    from lifelines import KaplanMeierFitter

__all__ = ["KaplanMeier", "quartile_groups", "kaplan_meier_by_quartile", "plot_kaplan_meier"]

_DPI = 100
GROUPS = ("Q1", "Q2", "Q3", "Q4")


@dataclass(frozen=True)
class KaplanMeier:
    """Curves (one lifelines fitter per quartile), group summary, at-risk table, log-rank test."""

    fitters: dict[str, KaplanMeierFitter]
    groups: pd.DataFrame  # group, cxr_age_min, cxr_age_max, n, events, median_survival
    at_risk: pd.DataFrame  # group, then one column per time point
    times: tuple[float, ...]
    logrank_chi2: float
    logrank_p: float
    time_label: str


def quartile_groups(values: pd.Series) -> pd.Series:
    """Q1 (youngest CXR-Age) .. Q4 (oldest), four groups of equal size.

    Quartiles are cut on ranks (ties broken by row order) rather than on values, so
    there are always four groups of n/4 even when predicted ages repeat (rounded
    outputs); ranges in the group table show where the cuts fell.
    """
    ranks = values.rank(method="first")
    return pd.qcut(ranks, 4, labels=list(GROUPS)).astype(str)


def _nice_times(t_max: float, n: int = 6) -> tuple[float, ...]:
    from matplotlib.ticker import MaxNLocator

    ticks = MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]).tick_values(0, t_max)
    return tuple(float(t) for t in ticks if 0 <= t <= t_max)


def kaplan_meier_by_quartile(cohort: Cohort) -> KaplanMeier:
    """Fit one Kaplan–Meier curve per CXR-Age quartile and a log-rank test across the four."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    data = cohort.data
    t, e, age = data[cohort.time], data[cohort.event], data[cohort.predicted_age]
    group = quartile_groups(age)
    times = _nice_times(float(t.max()))
    fitters, rows, risk_rows = {}, [], []
    for name in GROUPS:
        mask = (group == name).to_numpy()
        fitter = KaplanMeierFitter(label=name).fit(t[mask], e[mask])
        fitters[name] = fitter
        median = float(fitter.median_survival_time_)
        rows.append({"group": name, "cxr_age_min": float(age[mask].min()), "cxr_age_max": float(age[mask].max()),
                     "n": int(mask.sum()), "events": int(e[mask].sum()),
                     "median_survival": median if np.isfinite(median) else float("nan")})
        # at risk at time x: still followed and event-free just before x (T >= x), the usual convention
        tt = t[mask].to_numpy()
        risk_rows.append({"group": name, **{_time_name(x): int((tt >= x).sum()) for x in times}})
    test = multivariate_logrank_test(t, group, e)
    return KaplanMeier(fitters=fitters, groups=pd.DataFrame(rows), at_risk=pd.DataFrame(risk_rows), times=times,
                       logrank_chi2=float(test.test_statistic), logrank_p=float(test.p_value),
                       time_label=cohort.time)


def _time_name(x: float) -> str:
    return f"{x:g}"


def plot_kaplan_meier(km: KaplanMeier, path: str | Path, *, title: str = "Survival by CXR-Age quartile") -> Path:
    """KM curves with 95% bands, and the at-risk table on its own axis under the time axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 6.2))
    ax, table_ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4, 1.1]}, sharex=True)
    colors = ("C2", "C0", "C1", "C3")  # young -> old: green, blue, orange, red
    ranges = km.groups.set_index("group")
    for color, (name, fitter) in zip(colors, km.fitters.items(), strict=True):
        sf = fitter.survival_function_.iloc[:, 0]
        ci = fitter.confidence_interval_
        label = f"{name} (CXR-Age {ranges.loc[name, 'cxr_age_min']:.0f}–{ranges.loc[name, 'cxr_age_max']:.0f})"
        ax.step(sf.index, sf.to_numpy(), where="post", color=color, lw=2, label=label)
        ax.fill_between(ci.index, ci.iloc[:, 0], ci.iloc[:, 1], step="post", color=color, alpha=0.15, lw=0)
    ax.set(ylabel="survival probability", title=f"{title} (log-rank {_p(km.logrank_p)})")
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.01)
    ax.legend(loc="lower left", fontsize="small")
    ax.grid(alpha=0.3)

    x_max = max(km.times[-1], max(float(f.survival_function_.index.max()) for f in km.fitters.values()))
    table_ax.set_xlim(-0.06 * x_max, x_max * 1.04)  # room left of 0 for the first count
    table_ax.set_ylim(-0.5, len(km.fitters) - 0.5)
    table_ax.set_yticks(range(len(km.fitters)), list(reversed(list(km.fitters))))
    for i, (color, row) in enumerate(zip(colors, km.at_risk.itertuples(index=False), strict=True)):
        y = len(km.fitters) - 1 - i
        for x, count in zip(km.times, row[1:], strict=True):
            table_ax.text(x, y, str(count), ha="center", va="center", fontsize="small", color=color)
    for side in ("top", "right", "left"):
        table_ax.spines[side].set_visible(False)
    table_ax.tick_params(axis="y", length=0)
    table_ax.set_xticks(km.times)
    table_ax.set(xlabel=km.time_label)
    table_ax.set_title("number at risk", fontsize="small", loc="left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
