"""Bad cohorts are refused with errors that name the column, the option and the file lines."""

from __future__ import annotations

import pandas as pd
import pytest

from cxrkit.errors import CxrkitError
from cxrkit.survival import (
    CohortColumnMissing,
    CohortFileError,
    InvalidCohortValues,
    SurvivalError,
    TooFewEvents,
    load_cohort,
    validate_cohort,
)

ROLES = dict(time="years", event="died", predicted_age="cxr_age", age="age")


@pytest.fixture()
def small(simulate) -> pd.DataFrame:
    return simulate(5, n=200)


def _write(frame: pd.DataFrame, tmp_path, name="cohort.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_good_cohort_loads_from_csv_gz(small, tmp_path):
    path = tmp_path / "cohort.csv.gz"
    small.to_csv(path, index=False)
    cohort = load_cohort(path, **ROLES, covariates=["sex"])
    assert cohort.n == 200 and cohort.events == int(small["died"].sum())
    assert cohort.design == ("sex=M",) and cohort.data.index[0] == 2  # file line of the first row
    assert cohort.data["sex=M"].tolist() == (small["sex"] == "M").astype(float).tolist()


def test_missing_columns_are_all_named_with_their_option(small, tmp_path):
    path = _write(small, tmp_path)
    with pytest.raises(CohortColumnMissing) as info:
        load_cohort(path, time="follow_up", event="died", predicted_age="cxr_age", age="Age", covariates=["smoker"])
    message = str(info.value)
    assert "'follow_up' (given as `time`)" in message and "'Age' (given as `age`)" in message
    assert "'smoker' (given as `covariates`)" in message and "'years'" in message  # lists what the file has
    assert isinstance(info.value, CxrkitError) and isinstance(info.value, KeyError)


def test_non_numeric_values_give_file_lines(small, tmp_path):
    frame = small.astype({"age": object})
    frame.loc[3, "age"] = "sixty"
    frame.loc[10, "age"] = "62,5"
    with pytest.raises(InvalidCohortValues) as info:
        load_cohort(_write(frame, tmp_path), **ROLES)
    assert info.value.column == "age" and info.value.lines == (5, 12)  # header is line 1, row 0 is line 2
    assert "'sixty'" in str(info.value) and "'62,5'" in str(info.value)


def test_negative_times(small, tmp_path):
    frame = small.copy()
    frame.loc[[0, 7], "years"] = -1.0
    with pytest.raises(InvalidCohortValues, match="negative follow-up") as info:
        load_cohort(_write(frame, tmp_path), **ROLES)
    assert info.value.lines == (2, 9)


def test_events_must_be_0_or_1(small):
    frame = small.copy()
    frame.loc[4, "died"] = 2
    with pytest.raises(InvalidCohortValues, match=r"0 \(censored\) or 1 \(event\).*line 6 \(2") as info:
        validate_cohort(frame, **ROLES)
    assert info.value.column == "died"


def test_boolean_events_are_accepted(small):
    frame = small.assign(died=small["died"].astype(bool))
    assert validate_cohort(frame, **ROLES).events == int(small["died"].sum())


def test_too_few_events(small):
    frame = small.assign(died=0)
    frame.loc[:4, "died"] = 1
    with pytest.raises(TooFewEvents, match="only 5 event"):
        validate_cohort(frame, **ROLES)
    assert validate_cohort(frame, **ROLES, min_events=5).events == 5


def test_missing_values_error_or_drop(small):
    frame = small.copy()
    frame.loc[2, "cxr_age"] = float("nan")
    frame.loc[8, "sex"] = None
    with pytest.raises(InvalidCohortValues, match="missing values.*`drop_missing`") as info:
        validate_cohort(frame, **ROLES, covariates=["sex"])
    assert info.value.column == "cxr_age" and info.value.lines == (4,)
    cohort = validate_cohort(frame, **ROLES, covariates=["sex"], drop_missing=True)
    assert cohort.n == 198 and cohort.n_dropped == 2 and 4 not in cohort.data.index and 10 not in cohort.data.index


def test_same_column_in_two_roles_and_constant_columns(small):
    with pytest.raises(SurvivalError, match="both as `predicted_age` and as `age`"):
        validate_cohort(small, time="years", event="died", predicted_age="age", age="age")
    with pytest.raises(SurvivalError, match="single value"):
        validate_cohort(small.assign(sex="F"), **ROLES, covariates=["sex"])
    with pytest.raises(SurvivalError, match="looks like an identifier"):
        validate_cohort(small.assign(pid=[f"p{i}" for i in range(len(small))]), **ROLES, covariates=["pid"])


def test_unreadable_files(tmp_path):
    with pytest.raises(CohortFileError, match="no such file"):
        load_cohort(tmp_path / "absent.csv", **ROLES)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CohortFileError, match="empty"):
        load_cohort(tmp_path / "empty.csv", **ROLES)
