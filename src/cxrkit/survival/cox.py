"""Cox proportional-hazards models of CXR-Age against chronological age (lifelines).

Why these models: CXR-Age only means something if it predicts death *beyond*
chronological age. So we fit CXR-Age alone and age alone (how much each says on its
own), then age + covariates with and without CXR-Age, and test the difference with a
likelihood-ratio test (the two are nested, so twice the log-likelihood gain is
chi-square with one degree of freedom). Hazard ratios of the two age terms are given
per 5 years, the unit CXR-Age's authors reported (``exp(5 * coef)``; the Wald CI is
scaled the same way, the p-value does not change). Covariate rows stay per unit of the
covariate (per level versus the reference for categorical ones).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from .cohort import Cohort
from .errors import CoxFitError, SurvivalError

if TYPE_CHECKING:  # lifelines is imported when a model is fitted, not with this module
    from lifelines import CoxPHFitter

__all__ = [
    "COX_COLUMNS",
    "MODELS_COLUMNS",
    "LR_COLUMNS",
    "PH_COLUMNS",
    "PER_YEARS",
    "CoxModel",
    "CoxResults",
    "model_terms",
    "fit_cox",
    "fit_cox_models",
    "hazard_ratios",
    "likelihood_ratio",
]

COX_COLUMNS = ("model", "term", "hr_per_5y", "ci_low", "ci_high", "p")
MODELS_COLUMNS = ("model", "concordance", "n", "events", "log_likelihood")
LR_COLUMNS = ("reduced", "full", "added_term", "chi2", "df", "p", "log_likelihood_reduced", "log_likelihood_full")
PH_COLUMNS = ("model", "term", "test_statistic", "p")
PER_YEARS = 5.0

# Model names, stable so scripts can filter cox.csv by them.
CXR_AGE, AGE, AGE_ADJUSTED, CXR_AGE_ADJUSTED = "cxr_age", "age", "age_adjusted", "cxr_age_adjusted"


@dataclass(frozen=True)
class CoxModel:
    """One fitted model: its name, its terms, and lifelines' fitter (kept for further use)."""

    name: str
    terms: tuple[str, ...]
    fitter: CoxPHFitter
    ph_test: pd.DataFrame  # term, test_statistic, p
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CoxResults:
    """All models, and the tables written to ``cox.csv``, ``models.csv``, ``lr_test.csv``, ``ph_test.csv``."""

    models: tuple[CoxModel, ...]
    cox: pd.DataFrame
    summary: pd.DataFrame
    lr_test: pd.DataFrame
    ph_test: pd.DataFrame

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"{m.name}: {w}" for m in self.models for w in m.warnings)


def model_terms(cohort: Cohort) -> dict[str, tuple[str, ...]]:
    """The models fitted, by name. Without covariates, ``age_adjusted`` is just ``age`` and is not repeated."""
    terms: dict[str, tuple[str, ...]] = {CXR_AGE: (cohort.predicted_age,), AGE: (cohort.age,)}
    if cohort.design:
        terms[AGE_ADJUSTED] = (cohort.age, *cohort.design)
    terms[CXR_AGE_ADJUSTED] = (cohort.predicted_age, cohort.age, *cohort.design)
    return terms


def fit_cox(data: pd.DataFrame, time: str, event: str, terms: Sequence[str], name: str = "model") -> CoxModel:
    """Fit one Cox model (Efron ties, no penalty: lifelines' defaults) and test its PH assumption.

    lifelines' warnings (e.g. convergence) are caught and kept on the result, so they
    reach the report instead of scrolling past in a terminal.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError
    from lifelines.statistics import proportional_hazard_test

    frame = data[[time, event, *terms]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter = CoxPHFitter().fit(frame, duration_col=time, event_col=event)
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            raise CoxFitError(name, str(exc).strip().splitlines()[0]) from None
        # Schoenfeld-residual test against rank(time): lifelines' default in check_assumptions,
        # robust to a few very long follow-ups. It returns a result; nothing is printed.
        ph = proportional_hazard_test(fitter, frame, time_transform="rank").summary
    ph_table = pd.DataFrame({"term": [str(i) for i in ph.index], "test_statistic": ph["test_statistic"].to_numpy(float),
                             "p": ph["p"].to_numpy(float)})
    ph_table = ph_table.set_index("term").loc[list(terms)].reset_index()  # model order, not alphabetical
    notes = tuple(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    return CoxModel(name=name, terms=tuple(terms), fitter=fitter, ph_test=ph_table, warnings=notes)


def fit_cox_models(cohort: Cohort) -> CoxResults:
    """Fit every model of :func:`model_terms` and build the result tables."""
    models = tuple(fit_cox(cohort.data, cohort.time, cohort.event, terms, name)
                   for name, terms in model_terms(cohort).items())
    ages = (cohort.predicted_age, cohort.age)
    cox_rows, summary_rows, ph_rows = [], [], []
    for m in models:
        cox_rows += hazard_ratios(m, ages)
        summary_rows.append({"model": m.name, "concordance": float(m.fitter.concordance_index_), "n": cohort.n,
                             "events": cohort.events, "log_likelihood": float(m.fitter.log_likelihood_)})
        ph_rows += [{"model": m.name, **row} for row in m.ph_test.to_dict("records")]
    by_name = {m.name: m for m in models}
    reduced = by_name[AGE_ADJUSTED] if AGE_ADJUSTED in by_name else by_name[AGE]
    lr = likelihood_ratio(reduced, by_name[CXR_AGE_ADJUSTED])
    return CoxResults(models=models, cox=pd.DataFrame(cox_rows, columns=list(COX_COLUMNS)),
                      summary=pd.DataFrame(summary_rows, columns=list(MODELS_COLUMNS)),
                      lr_test=pd.DataFrame([lr], columns=list(LR_COLUMNS)),
                      ph_test=pd.DataFrame(ph_rows, columns=list(PH_COLUMNS)))


def hazard_ratios(model: CoxModel, per_5_years: Sequence[str]) -> list[dict[str, object]]:
    """Rows of ``cox.csv`` for one model: terms in ``per_5_years`` scaled to 5 units, others per unit."""
    s = model.fitter.summary
    rows = []
    for term in model.terms:
        scale = PER_YEARS if term in per_5_years else 1.0
        rows.append({
            "model": model.name, "term": term,
            "hr_per_5y": math.exp(scale * s.loc[term, "coef"]),
            "ci_low": math.exp(scale * s.loc[term, "coef lower 95%"]),
            "ci_high": math.exp(scale * s.loc[term, "coef upper 95%"]),
            "p": float(s.loc[term, "p"]),
        })
    return rows


def likelihood_ratio(reduced: CoxModel, full: CoxModel) -> dict[str, object]:
    """LR test of nested models: 2 (ll_full - ll_reduced) ~ chi2(df = extra terms).

    Preferred over the Wald p-value of the added term because it does not rely on the
    log-HR being normally distributed, and it is the test CXR-Age's authors used for
    "added value".
    """
    added = [t for t in full.terms if t not in reduced.terms]
    if set(reduced.terms) - set(full.terms) or not added:
        raise SurvivalError(f"{reduced.name!r} is not nested in {full.name!r}")
    ll_r, ll_f = float(reduced.fitter.log_likelihood_), float(full.fitter.log_likelihood_)
    chi2 = max(2.0 * (ll_f - ll_r), 0.0)  # a tiny negative value is optimiser noise
    df = len(added)
    return {"reduced": reduced.name, "full": full.name, "added_term": ",".join(added), "chi2": chi2, "df": df,
            "p": float(stats.chi2.sf(chi2, df)), "log_likelihood_reduced": ll_r, "log_likelihood_full": ll_f}
