"""The one harmonisation function: exact tokens, combination rule, No Finding, uncertainty policies."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.datasets.harmonise import harmonise, label_order, token_columns

nan = np.nan


def test_token_columns_are_exact_and_keep_unknown_rows():
    cols = token_columns([("nodule",), ("pseudonodule",), None, ()], ["nodule", "pseudonodule"])
    np.testing.assert_array_equal(cols["nodule"], [1, 0, nan, 0])
    np.testing.assert_array_equal(cols["pseudonodule"], [0, 1, nan, 0])


def test_combination_positive_beats_uncertain_beats_negative():
    columns = {"a": np.array([1, -1, 0, nan, 0]), "b": np.array([0, 0, -1, nan, nan])}
    out, names = harmonise(columns, {"a": "Mass", "b": "Mass"}, uncertain="keep")
    assert names == ("Mass",)
    np.testing.assert_array_equal(out[:, 0], [1, -1, -1, nan, 0])


def test_one_original_can_feed_two_labels_and_missing_labels_are_nan():
    out, names = harmonise({"consolidation": np.array([1.0, 0.0])},
                           {"consolidation": ("Consolidation", "Infiltration")},
                           labels=("Consolidation", "Infiltration", "Hernia"))
    np.testing.assert_array_equal(out, [[1, 1, nan], [0, 0, nan]])


@pytest.mark.parametrize("policy,value", [("nan", nan), ("ones", 1.0), ("zeros", 0.0), ("keep", -1.0)])
def test_uncertain_policy(policy, value):
    out, _ = harmonise({"Edema": np.array([-1.0, 1.0])}, {"Edema": "Edema"}, uncertain=policy)
    np.testing.assert_array_equal(out[:, 0], [value, 1.0])


def test_no_finding_fills_only_blanks_and_respects_exemptions():
    columns = {"Edema": np.array([nan, nan, -1.0]), "Support Devices": np.array([nan, nan, nan])}
    out, names = harmonise(columns, {"Edema": "Edema", "Support Devices": "Support Devices"}, uncertain="keep",
                           no_finding=np.array([True, False, True]), no_finding_exempt=("Support Devices",))
    assert names == ("Edema", "Support Devices")
    np.testing.assert_array_equal(out, [[0, nan], [nan, nan], [-1, nan]])


def test_label_order_is_standard_then_extras():
    assert label_order({"x": "Tube", "y": "Nodule", "z": ("Atelectasis", "Tube")}) == ("Atelectasis", "Nodule", "Tube")


def test_bad_policy_and_missing_column_raise():
    with pytest.raises(ValueError, match="uncertain"):
        harmonise({"a": np.zeros(1)}, {"a": "Mass"}, uncertain="maybe")
    with pytest.raises(KeyError, match="b"):
        harmonise({"a": np.zeros(1)}, {"b": "Mass"})
