"""Survival analysis of CXR-Age: does a radiograph's predicted age predict death beyond chronological age?

:func:`load_cohort` reads and checks a one-row-per-person CSV (columns named by the
caller); :func:`analyse_survival` fits Cox models (CXR-Age alone, age alone, age +
covariates with and without CXR-Age; hazard ratios per 5 years), the likelihood-ratio
test of CXR-Age's added value, the proportional-hazards check and Kaplan–Meier curves by
CXR-Age quartile; :func:`write_survival_report` writes the output folder. Needs
lifelines (which brings scipy and matplotlib); it is imported on first use, not here.
"""

from __future__ import annotations

from .analysis import SurvivalAnalysis, analyse_survival
from .cohort import Cohort, load_cohort, validate_cohort
from .cox import (
    COX_COLUMNS,
    LR_COLUMNS,
    MODELS_COLUMNS,
    PER_YEARS,
    PH_COLUMNS,
    CoxModel,
    CoxResults,
    fit_cox,
    fit_cox_models,
    hazard_ratios,
    likelihood_ratio,
)
from .errors import (
    CohortColumnMissing,
    CohortFileError,
    CoxFitError,
    InvalidCohortValues,
    SurvivalError,
    TooFewEvents,
)
from .km import (
    KaplanMeier,
    kaplan_meier_by_quartile,
    plot_kaplan_meier,
    quartile_groups,
)
from .report import ARTEFACTS, write_survival_report

__all__ = [
    "load_cohort",
    "validate_cohort",
    "analyse_survival",
    "write_survival_report",
    "Cohort",
    "SurvivalAnalysis",
    "CoxModel",
    "CoxResults",
    "KaplanMeier",
    "fit_cox",
    "fit_cox_models",
    "hazard_ratios",
    "likelihood_ratio",
    "kaplan_meier_by_quartile",
    "plot_kaplan_meier",
    "quartile_groups",
    "COX_COLUMNS",
    "MODELS_COLUMNS",
    "LR_COLUMNS",
    "PH_COLUMNS",
    "PER_YEARS",
    "ARTEFACTS",
    "SurvivalError",
    "CohortFileError",
    "CohortColumnMissing",
    "InvalidCohortValues",
    "TooFewEvents",
    "CoxFitError",
]
