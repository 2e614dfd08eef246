"""The Cox wrapper recovers a known hazard ratio per 5 years on simulated cohorts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxrkit.survival import fit_cox, fit_cox_models, hazard_ratios, validate_cohort

TRUE_HR = {"cxr_age": 2.0, "age": 1.5, "sex=M": 1.3}
SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def adjusted(simulate):
    """The adjusted model (CXR-Age + age + sex) fitted on five simulated cohorts of 2,000 people."""
    fits = []
    for seed in SEEDS:
        frame = simulate(seed, shape=1.0 if seed % 2 else 1.5)  # exponential and Weibull baselines
        cohort = validate_cohort(frame, time="years", event="died", predicted_age="cxr_age", age="age",
                                 covariates=["sex"])
        # only the adjusted model (the one whose true coefficients are known), to keep the test fast
        model = fit_cox(cohort.data, "years", "died", ["cxr_age", "age", *cohort.design], "cxr_age_adjusted")
        fits.append(pd.DataFrame(hazard_ratios(model, ["cxr_age", "age"])).set_index("term"))
    return fits


@pytest.mark.parametrize("term", list(TRUE_HR))
def test_95ci_covers_the_true_hazard_ratio(adjusted, term):
    # Each 95% CI misses the truth 5% of the time, so "all five cover" would be a tuned
    # test. We require at least 4 of 5: for an honest CI that holds with probability
    # 1 - 0.95^5 - 5·0.05·0.95^4 ≈ 0.977 for any seed set, and a biased or too-narrow CI
    # fails it. With these fixed seeds (checked): age and sex=M cover 5/5, cxr_age 4/5
    # (seed 1, exponential: 1.80 [1.62, 1.99] for a true 2.0). In a 40-seed check
    # (Weibull 1.5) the CIs covered 39 (cxr_age), 38 (age) and 37 (sex=M) times of 40.
    truth = TRUE_HR[term]
    covered = [fit.loc[term, "ci_low"] <= truth <= fit.loc[term, "ci_high"] for fit in adjusted]
    assert sum(covered) >= 4, [(fit.loc[term, "ci_low"], fit.loc[term, "ci_high"]) for fit in adjusted]


@pytest.mark.parametrize("term", list(TRUE_HR))
def test_estimate_is_unbiased_and_ci_is_not_trivially_wide(adjusted, term):
    """Coverage alone would pass with a huge CI: the mean estimate must sit near the truth and the CI be tight."""
    log_hr = np.log([fit.loc[term, "hr_per_5y"] for fit in adjusted])
    assert abs(log_hr.mean() - math.log(TRUE_HR[term])) < 0.06
    widths = [math.log(fit.loc[term, "ci_high"] / fit.loc[term, "ci_low"]) for fit in adjusted]
    assert max(widths) < 0.4  # log-scale width: 0.17-0.23 for the ages, 0.26-0.32 for sex at n = 2,000


def test_cxr_age_alone_when_it_is_the_only_cause(simulate):
    """With no effect of age or sex, the single-term models are correctly specified too."""
    frame = simulate(11, hr={"cxr_age": 1.8, "age": 1.0, "sex=M": 1.0})
    cohort = validate_cohort(frame, time="years", event="died", predicted_age="cxr_age", age="age")
    result = fit_cox_models(cohort)
    row = result.cox.set_index(["model", "term"]).loc[("cxr_age", "cxr_age")]
    assert row["ci_low"] <= 1.8 <= row["ci_high"]  # seed 11 checked; a single-seed check of a 95% CI
    adjusted_age = result.cox.set_index(["model", "term"]).loc[("cxr_age_adjusted", "age")]
    assert adjusted_age["ci_low"] <= 1.0 <= adjusted_age["ci_high"]
    assert list(result.summary["model"]) == ["cxr_age", "age", "cxr_age_adjusted"]  # no covariates: no age_adjusted
    assert result.lr_test.loc[0, "reduced"] == "age" and result.lr_test.loc[0, "p"] < 1e-10
