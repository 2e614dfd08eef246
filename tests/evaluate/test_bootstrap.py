"""Bootstrap CIs: contain the estimate, reproducible by seed, patients never split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cxrkit.evaluate import (
    bootstrap_auc,
    bootstrap_indices,
    evaluate_predictions,
    fast_auc,
    load_labels,
    load_predictions,
)


def _fixture(fixture_dir):
    table = load_labels(fixture_dir / "labels.csv")
    return load_predictions(fixture_dir / "predictions.csv"), table


def test_ci_contains_the_estimate_and_is_reproducible(fixture_dir):
    preds, table = _fixture(fixture_dir)
    run = lambda seed: evaluate_predictions(preds, table.labels, patients=table.patients,  # noqa: E731
                                            n_bootstrap=300, seed=seed).table
    first, again, other = run(0), run(0), run(1)
    assert (first["auc_ci_low"] <= first["auc"]).all() and (first["auc"] <= first["auc_ci_high"]).all()
    assert (first["auc_ci_high"] - first["auc_ci_low"] > 0.05).all()
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["auc_ci_low"], other["auc_ci_low"])


def test_patient_level_resampling_never_splits_a_patient():
    groups = ["a", "a", "a", "b", "c", "c", "d", "e", "e", "e", "e", "f"]
    members = {g: [i for i, x in enumerate(groups) if x == g] for g in set(groups)}
    for idx in bootstrap_indices(len(groups), groups, n_boot=200, seed=5):
        counts = np.bincount(idx, minlength=len(groups))
        for rows in members.values():
            assert len(set(counts[rows])) == 1  # every image of a patient drawn equally often
        # as many patients drawn as exist
        assert sum(counts[rows[0]] for rows in members.values()) == len(members)


def test_image_level_indices_and_fast_auc():
    idx = list(bootstrap_indices(7, None, n_boot=3, seed=0))
    assert all(len(i) == 7 and i.max() < 7 for i in idx)
    assert [i.tolist() for i in idx] == [i.tolist() for i in bootstrap_indices(7, None, n_boot=3, seed=0)]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(float)
    s = np.round(rng.random(200), 1)
    assert abs(fast_auc(y, s) - roc_auc_score(y, s)) < 1e-14


def test_patient_level_flag_and_mean_replicates():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], float)
    s = y + np.array([[0.1, 0.2], [0.5, -0.3], [-0.6, 0.1], [0.3, 0.2], [0.2, 0.1], [0.1, 0.4]])
    ci = bootstrap_auc(y, s, ["A", "B"], groups=["p", "p", "q", "r", "s", "s"], n_boot=50, seed=0)
    assert ci.patient_level and list(ci.replicates.columns) == ["A", "B", "mean"]
    both = ci.replicates[["A", "B"]].notna().all(axis=1)
    assert np.allclose(ci.replicates.loc[both, "mean"], ci.replicates.loc[both, ["A", "B"]].mean(axis=1))
    assert ci.replicates.loc[~both, "mean"].isna().all()
