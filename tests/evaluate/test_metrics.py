"""Per-label metrics: masking, undefined AUCs, thresholds on crafted cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrkit.evaluate import (
    EvaluationError,
    auroc,
    binary_metrics,
    choose_threshold,
    evaluate_predictions,
    metrics_at_threshold,
)

# 4 positives, 6 negatives. J = TP/4 - FP/6 at each threshold: 0.9 -> 1/4, 0.8 -> 1/2,
# 0.7 -> 1/3, 0.6 -> 3/4 - 1/6 = 7/12 (the max), 0.5 -> 5/12, 0.45 -> 1/4, 0.4 -> 1/2, below: less.
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], float)
S = np.array([0.9, 0.8, 0.6, 0.4, 0.7, 0.5, 0.45, 0.2, 0.1, 0.05])


def test_youden_known_answer():
    assert choose_threshold(Y, S, "youden") == 0.6
    m = metrics_at_threshold(Y, S, 0.6)
    assert m == pytest.approx(dict(sensitivity=0.75, specificity=5 / 6, ppv=0.75, npv=5 / 6, f1=0.75))


def test_f1_and_ppv80_known_answers():
    # F1 = 2TP/(TP+FP+4): 0.9 -> 2/5, 0.8 -> 4/6, 0.7 -> 4/7, 0.6 -> 6/8 (max), 0.5 -> 6/9, 0.4 -> 8/11
    assert choose_threshold(Y, S, "f1") == 0.6
    # PPV: 0.9 -> 1, 0.8 -> 1, 0.7 -> 2/3, 0.6 -> 3/4: the most sensitive with PPV >= 0.8 is 0.8
    assert choose_threshold(Y, S, "ppv80") == 0.8
    assert math.isnan(choose_threshold(np.array([1, 0, 0, 0.0]), np.array([0.1, 0.9, 0.8, 0.7]), "ppv80"))
    with pytest.raises(ValueError, match="threshold method"):
        choose_threshold(Y, S, "best")


def test_auc_matches_sklearn_with_ties_and_masks_nan():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    y_nan, s_nan = y.copy(), s.copy()
    y_nan[:20] = np.nan
    s_nan[20:30] = np.nan
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-15)
    assert auroc(y_nan, s_nan) == pytest.approx(roc_auc_score(y[30:], s[30:]), abs=1e-15)


def test_single_class_label_is_nan_with_counts_and_left_out_of_mean():
    ids = [f"{i}.png" for i in range(8)]
    labels = pd.DataFrame({"Effusion": [1, 0, 1, 0, 1, 0, 0, 1], "Hernia": [0.0] * 7 + [np.nan]}, index=ids)
    preds = pd.DataFrame({"Effusion": [0.9, 0.1, 0.8, 0.3, 0.55, 0.2, 0.4, 0.7], "Hernia": np.linspace(0, 1, 8)},
                         index=ids)
    table = evaluate_predictions(preds, labels, n_bootstrap=20).table.set_index("label")
    assert math.isnan(table.loc["Hernia", "auc"]) and math.isnan(table.loc["Hernia", "auc_ci_low"])
    assert (table.loc["Hernia", "n_pos"], table.loc["Hernia", "n_neg"]) == (0, 7)
    assert table.loc["mean", "auc"] == table.loc["Effusion", "auc"] == 1.0  # not averaged with a 0 or NaN
    assert binary_metrics("x", np.array([0.0, 0.0]), np.array([0.2, 0.3])).n_neg == 2


def test_fixed_thresholds_override_the_rule_and_bad_labels_raise():
    ids = [f"{i}.png" for i in range(10)]
    labels = pd.DataFrame({"Mass": Y}, index=ids)
    preds = pd.DataFrame({"Mass": S}, index=ids)
    table = evaluate_predictions(preds, labels, thresholds={"Mass": 0.4}, n_bootstrap=0).table
    assert table.loc[0, "threshold"] == 0.4 and table.loc[0, "sensitivity"] == 1.0 and table.loc[0, "specificity"] == 0.5
    labels.iloc[0, 0] = -1  # an uncertain label must be resolved upstream, not guessed here
    with pytest.raises(EvaluationError, match="0, 1 or NaN"):
        evaluate_predictions(preds, labels, n_bootstrap=0)
