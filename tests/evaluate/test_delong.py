"""DeLong: the fast midrank algorithm against a direct O(m·n) computation and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from cxrkit.evaluate import delong_covariance, delong_test


def _slow_delong(y, scores):
    """DeLong et al. (1988) written out: the pair kernel psi, structural components V10/V01, S = S10/m + S01/n."""
    y = np.asarray(y).astype(bool)
    k = len(scores)
    m, n = int(y.sum()), int((~y).sum())
    v10 = np.zeros((k, m))
    v01 = np.zeros((k, n))
    aucs = np.zeros(k)
    for r, s in enumerate(scores):
        x, w = s[y], s[~y]
        psi = np.array([[1.0 if xi > wj else 0.5 if xi == wj else 0.0 for wj in w] for xi in x])
        aucs[r] = psi.mean()
        v10[r] = psi.mean(axis=1)
        v01[r] = psi.mean(axis=0)
    s10 = np.array([[np.sum((v10[a] - aucs[a]) * (v10[b] - aucs[b])) / (m - 1) for b in range(k)] for a in range(k)])
    s01 = np.array([[np.sum((v01[a] - aucs[a]) * (v01[b] - aucs[b])) / (n - 1) for b in range(k)] for a in range(k)])
    return aucs, s10 / m + s01 / n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_matches_slow_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 120)
    a = np.round(rng.normal(size=120) + y, 1)  # rounded: plenty of ties
    b = np.round(0.6 * a + rng.normal(size=120) + 0.5 * y, 1)
    c = rng.random(120)
    aucs, cov = delong_covariance(y, np.vstack([a, b, c]))
    slow_aucs, slow_cov = _slow_delong(y, [a, b, c])
    np.testing.assert_allclose(aucs, slow_aucs, rtol=0, atol=1e-13)
    np.testing.assert_allclose(cov, slow_cov, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, s) for s in (a, b, c)], rtol=0, atol=1e-13)
    result = delong_test(y, a, b)
    var = slow_cov[0, 0] + slow_cov[1, 1] - 2 * slow_cov[0, 1]
    z = (slow_aucs[0] - slow_aucs[1]) / math.sqrt(var)
    assert result.z == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)
    assert result.n == 120


def test_identical_predictions_give_p_one():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 80)
    s = rng.random(80)
    result = delong_test(y, s, s.copy())
    assert result.diff == 0 and result.z == 0 and result.p_value == 1.0
    # a monotone transform ranks identically: same AUC, p = 1
    assert delong_test(y, s, s**3).p_value == pytest.approx(1.0)


def test_clearly_better_model_is_significant_and_nan_is_masked():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400).astype(float)
    good = y + rng.normal(scale=0.5, size=400)
    bad = rng.random(400)
    result = delong_test(y, good, bad)
    assert result.diff > 0.3 and result.p_value < 1e-10
    y[:10] = np.nan
    bad[10:15] = np.nan
    assert delong_test(y, good, bad).n == 385


def test_too_few_cases_gives_nan_not_a_crash():
    result = delong_test(np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3]), np.array([0.5, 0.6, 0.2, 0.1]))
    assert result.auc_a == 1.0 and math.isnan(result.p_value)
