"""On a real public cohort (Rossi recidivism, shipped with lifelines) the wrapper equals lifelines' own fits.

Roles are borrowed: ``age`` plays CXR-Age and ``prio`` (prior convictions) plays
chronological age, so both are reported per 5 units; the other columns are covariates,
reported per unit. The adjusted model is then lifelines' textbook Rossi model.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxrkit.survival import analyse_survival, validate_cohort

lifelines = pytest.importorskip("lifelines")
from lifelines import CoxPHFitter  # noqa: E402
from lifelines.datasets import load_rossi  # noqa: E402
from lifelines.statistics import proportional_hazard_test  # noqa: E402

COVARIATES = ["fin", "race", "wexp", "mar", "paro"]


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    return load_rossi()


@pytest.fixture(scope="module")
def analysis(rossi):
    cohort = validate_cohort(rossi, time="week", event="arrest", predicted_age="age", age="prio", covariates=COVARIATES)
    return analyse_survival(cohort)


def _lifelines(rossi: pd.DataFrame, terms: list[str]) -> CoxPHFitter:
    return CoxPHFitter().fit(rossi[["week", "arrest", *terms]], duration_col="week", event_col="arrest")


@pytest.mark.parametrize("model, terms", [
    ("cxr_age", ["age"]),
    ("age", ["prio"]),
    ("age_adjusted", ["prio", *COVARIATES]),
    ("cxr_age_adjusted", ["age", "prio", *COVARIATES]),
])
def test_hazard_ratios_ci_and_p_equal_lifelines(rossi, analysis, model, terms):
    reference = _lifelines(rossi, terms).summary
    ours = analysis.cox.cox[analysis.cox.cox["model"] == model].set_index("term")
    assert list(ours.index) == terms
    for term in terms:
        k = 5.0 if term in ("age", "prio") else 1.0  # per 5 units for the two age roles, per unit otherwise
        assert ours.loc[term, "hr_per_5y"] == pytest.approx(math.exp(k * reference.loc[term, "coef"]), rel=1e-9)
        assert ours.loc[term, "ci_low"] == pytest.approx(math.exp(k * reference.loc[term, "coef lower 95%"]), rel=1e-9)
        assert ours.loc[term, "ci_high"] == pytest.approx(math.exp(k * reference.loc[term, "coef upper 95%"]), rel=1e-9)
        assert ours.loc[term, "p"] == pytest.approx(reference.loc[term, "p"], rel=1e-9)
        if k == 1.0:  # per unit: exactly lifelines' own exp(coef) columns
            assert ours.loc[term, "hr_per_5y"] == pytest.approx(reference.loc[term, "exp(coef)"], rel=1e-9)


def test_known_published_values(analysis):
    """lifelines' documented Rossi fit: age coef -0.057 (HR 0.94/yr), prio 0.091; C-index 0.64."""
    cox = analysis.cox.cox.set_index(["model", "term"])
    assert cox.loc[("cxr_age_adjusted", "age"), "hr_per_5y"] == pytest.approx(math.exp(-0.0574 * 5), rel=2e-3)
    assert cox.loc[("cxr_age_adjusted", "prio"), "hr_per_5y"] == pytest.approx(math.exp(0.0915 * 5), rel=2e-3)
    models = analysis.cox.summary.set_index("model")
    assert models.loc["cxr_age_adjusted", "concordance"] == pytest.approx(0.640, abs=1e-3)


def test_concordance_loglik_lr_and_ph_equal_lifelines(rossi, analysis):
    full = _lifelines(rossi, ["age", "prio", *COVARIATES])
    reduced = _lifelines(rossi, ["prio", *COVARIATES])
    models = analysis.cox.summary.set_index("model")
    assert models.loc["cxr_age_adjusted", "concordance"] == pytest.approx(full.concordance_index_, rel=1e-12)
    assert models.loc["cxr_age_adjusted", "log_likelihood"] == pytest.approx(full.log_likelihood_, rel=1e-12)
    assert models.loc["cxr_age_adjusted", ["n", "events"]].tolist() == [432, 114]

    lr = analysis.cox.lr_test.iloc[0]
    chi2 = 2 * (full.log_likelihood_ - reduced.log_likelihood_)
    assert (lr["reduced"], lr["full"], lr["added_term"], lr["df"]) == ("age_adjusted", "cxr_age_adjusted", "age", 1)
    assert lr["chi2"] == pytest.approx(chi2, rel=1e-9)
    from scipy.stats import chi2 as chi2_dist
    assert lr["p"] == pytest.approx(chi2_dist.sf(chi2, 1), rel=1e-9)

    ph = proportional_hazard_test(full, rossi[["week", "arrest", "age", "prio", *COVARIATES]],
                                  time_transform="rank").summary
    ours = analysis.cox.ph_test[analysis.cox.ph_test["model"] == "cxr_age_adjusted"].set_index("term")
    for term in ["age", "prio", *COVARIATES]:
        assert ours.loc[term, "p"] == pytest.approx(ph.loc[term, "p"], rel=1e-9)
    assert ours.loc["age", "p"] < 0.05 and ours.loc["wexp", "p"] < 0.05  # the known violations in Rossi


def test_text_covariate_is_one_hot_against_the_sorted_first_level(rossi):
    coded = rossi.assign(fin=np.where(rossi["fin"] == 1, "yes", "no"))
    cohort = validate_cohort(coded, time="week", event="arrest", predicted_age="age", age="prio", covariates=["fin"])
    assert cohort.design == ("fin=yes",) and "reference 'no'" in cohort.encoding["fin"]
    ours = analyse_survival(cohort, kaplan_meier=False).cox.cox.set_index(["model", "term"])
    reference = _lifelines(rossi, ["age", "prio", "fin"]).summary
    assert ours.loc[("cxr_age_adjusted", "fin=yes"), "hr_per_5y"] == pytest.approx(reference.loc["fin", "exp(coef)"], rel=1e-9)


def test_numbers_at_risk_by_quartile(rossi, analysis):
    km = analysis.km
    assert km.groups["n"].tolist() == [108, 108, 108, 108]
    assert km.groups["events"].sum() == 114
    ranks = rossi["age"].rank(method="first")
    q4 = rossi[ranks > 324]
    for column in km.at_risk.columns[1:]:
        assert km.at_risk.set_index("group").loc["Q4", column] == int((q4["week"] >= float(column)).sum())
    assert km.times[0] == 0 and km.at_risk[km.at_risk.columns[1]].tolist() == [108] * 4
    assert 0 <= km.logrank_p <= 1
