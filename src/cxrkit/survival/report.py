"""Write a survival analysis to a folder: CSV tables at full precision, the KM plot, ``report.md``.

As in :mod:`cxrkit.evaluate.report`, the CSVs keep every digit (so a published hazard
ratio can be checked) and ``report.md`` rounds for people and says how each number was
obtained. The two small formatting helpers are repeated here rather than imported from
``cxrkit.evaluate`` because that package pulls in scikit-learn, which survival analysis
does not otherwise need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .analysis import SurvivalAnalysis
from .cox import AGE, AGE_ADJUSTED, CXR_AGE, CXR_AGE_ADJUSTED, PER_YEARS
from .km import plot_kaplan_meier

__all__ = ["write_survival_report", "ARTEFACTS"]

ARTEFACTS = ("cox.csv", "models.csv", "lr_test.csv", "ph_test.csv", "km_groups.csv", "km_at_risk.csv",
             "km_cxr_age_quartiles.png", "report.md")


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.2e}" if 0 < abs(value) < 10 ** -digits else f"{value:.{digits}f}"
    return str(value)


def _fmt_p(p: float) -> str:
    """p-values to 2 significant digits; one that underflowed to 0 is shown as a bound, not as 0."""
    if math.isnan(p):
        return "—"
    return "< 1e-300" if p == 0 else (f"{p:.2g}" if p < 0.001 else f"{p:.3f}")


def _markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    is_p = [str(c) == "p" for c in frame.columns]
    body = ["| " + " | ".join(_fmt_p(float(v)) if p else _fmt(v, digits) for v, p in zip(row, is_p, strict=True)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def write_survival_report(analysis: SurvivalAnalysis, output: str | Path, *, plots: bool = True,
                          command: str | None = None, sources: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write every artefact into ``output`` (created if needed); returns name -> path."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def csv(name: str, frame: pd.DataFrame) -> None:
        files[name] = out / name
        frame.to_csv(files[name], index=False)

    csv("cox.csv", analysis.cox.cox)
    csv("models.csv", analysis.cox.summary)
    csv("lr_test.csv", analysis.cox.lr_test)
    csv("ph_test.csv", analysis.cox.ph_test)
    if analysis.km is not None:
        csv("km_groups.csv", analysis.km.groups)
        csv("km_at_risk.csv", analysis.km.at_risk)
        if plots:
            files["km_cxr_age_quartiles.png"] = plot_kaplan_meier(analysis.km, out / "km_cxr_age_quartiles.png")
    files["report.md"] = out / "report.md"
    files["report.md"].write_text(_report_md(analysis, files, sources, command), encoding="utf-8")
    return files


def _describe_models(a: SurvivalAnalysis) -> list[str]:
    c = a.cohort
    cov = " + covariates" if c.design else ""
    names = {CXR_AGE: f"`{c.predicted_age}` alone", AGE: f"`{c.age}` alone",
             AGE_ADJUSTED: f"`{c.age}`{cov}", CXR_AGE_ADJUSTED: f"`{c.predicted_age}` + `{c.age}`{cov}"}
    return [f"- `{m.name}`: {names.get(m.name, ', '.join(m.terms))}" for m in a.cox.models]


def _report_md(a: SurvivalAnalysis, files: Mapping[str, Path], sources, command) -> str:
    c, cox = a.cohort, a.cox
    lines = ["# Survival analysis: CXR-Age", ""]
    lines += [f"- {k}: `{v}`" for k, v in (sources or {}).items()]
    lines += [
        f"- Columns: time `{c.time}`, event `{c.event}` (1 = event, 0 = censored), CXR-Age `{c.predicted_age}`, "
        f"chronological age `{c.age}`.",
        f"- People analysed: {c.n}, events: {c.events} ({c.events / c.n:.1%}), follow-up "
        f"{c.data[c.time].min():.3g} to {c.data[c.time].max():.3g} (median {c.data[c.time].median():.3g})"
        + (f"; {c.n_dropped} row(s) with a missing value dropped (`drop_missing`)." if c.n_dropped else "."),
    ]
    if c.encoding:
        lines.append("- Covariates: " + "; ".join(f"`{k}` {v}" for k, v in c.encoding.items()) + ".")
    lines += ["", "## Cox proportional-hazards models", "", "Models:", "", *_describe_models(a), "",
              "Fitted with lifelines `CoxPHFitter` (Efron ties, no penalty). `hr_per_5y` is the hazard ratio per "
              f"{PER_YEARS:g} years for the two age terms, `exp({PER_YEARS:g} × coef)`, with the Wald 95% CI scaled "
              "the same way; for covariate rows it is per unit of the covariate (for a categorical level: that level "
              "versus the reference). p is the Wald test of the coefficient (unchanged by the scaling).",
              "", "Full precision in [cox.csv](cox.csv).", "", _markdown_table(cox.cox), "",
              "### Discrimination and fit", "",
              "Harrell's concordance index (0.5 = chance; higher = the model ranks who dies first better) and the "
              "partial log-likelihood, in [models.csv](models.csv).", "", _markdown_table(cox.summary), ""]
    lr = cox.lr_test.iloc[0]
    lines += ["### Added value of CXR-Age (likelihood-ratio test)", "",
              f"Nested models: `{lr['reduced']}` versus `{lr['full']}` (adds `{lr['added_term']}`). "
              f"LR χ² = {lr['chi2']:.2f} on {int(lr['df'])} df, p = {_fmt_p(float(lr['p']))}. A small p means "
              "CXR-Age predicts the outcome beyond chronological age" + (" and the covariates" if c.design else "")
              + ". In [lr_test.csv](lr_test.csv).", ""]
    ph = cox.ph_test
    flagged = ph[ph["p"] < 0.05]
    lines += ["### Proportional-hazards assumption", "",
              "Schoenfeld-residual test per term (lifelines `proportional_hazard_test`, time transformed to its "
              "rank). p < 0.05 suggests the term's hazard ratio changes over follow-up, so the reported HR is an "
              "average over it. With large cohorts tiny, harmless departures are significant: look at the KM curves "
              "(crossing or converging) before acting. In [ph_test.csv](ph_test.csv).", "", _markdown_table(ph), ""]
    if len(flagged):
        lines += ["Terms with p < 0.05: " + ", ".join(f"`{r.term}` in `{r.model}`" for r in flagged.itertuples()), ""]
    if a.km is not None:
        km = a.km
        lines += ["## Kaplan–Meier curves by CXR-Age quartile", "",
                  "Quartiles of CXR-Age cut on ranks (four equal groups; Q1 youngest). Log-rank test across the four "
                  f"groups: χ² = {km.logrank_chi2:.2f} on 3 df, p = {_fmt_p(km.logrank_p)}. Median survival is "
                  "— where the curve never falls to 0.5.", "", _markdown_table(km.groups, 2), ""]
        if "km_cxr_age_quartiles.png" in files:
            lines += ["![Kaplan–Meier by CXR-Age quartile](km_cxr_age_quartiles.png)", ""]
        lines += [f"Numbers at risk (still followed and event-free) at each `{c.time}`, also in "
                  "[km_at_risk.csv](km_at_risk.csv):", "", _markdown_table(km.at_risk), ""]
    if a.warnings:
        lines += ["## Warnings", "", *[f"- {w}" for w in a.warnings], ""]
    if command:
        lines += ["## Reproduce", "", "```", command, "```", ""]
    return "\n".join(lines)
