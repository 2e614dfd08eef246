"""``cxr survival`` end to end: every artefact in the output folder, JSON output, errors."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.survival import ARTEFACTS, COX_COLUMNS, MODELS_COLUMNS, InvalidCohortValues

runner = CliRunner()


@pytest.fixture(scope="module")
def run(simulate, survival_app, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("survival")
    simulate(7, n=800).to_csv(tmp / "cohort.csv", index=False)
    out = tmp / "out"
    result = runner.invoke(survival_app, [
        "survival", str(tmp / "cohort.csv"), "--time", "years", "--event", "died", "--predicted-age", "cxr_age",
        "--age", "age", "--covariates", "sex", "--output", str(out), "--format", "json"])
    return result, out


@pytest.mark.slow
def test_output_folder_has_every_artefact(run):
    result, out = run
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTEFACTS)
    cox = pd.read_csv(out / "cox.csv")
    assert tuple(cox.columns) == COX_COLUMNS
    assert cox["model"].unique().tolist() == ["cxr_age", "age", "age_adjusted", "cxr_age_adjusted"]
    assert (cox["ci_low"] < cox["hr_per_5y"]).all() and (cox["hr_per_5y"] < cox["ci_high"]).all()
    models = pd.read_csv(out / "models.csv")
    assert tuple(models.columns) == MODELS_COLUMNS and (models["n"] == 800).all()
    assert pd.read_csv(out / "lr_test.csv").loc[0, "added_term"] == "cxr_age"
    assert set(pd.read_csv(out / "ph_test.csv")["term"]) == {"cxr_age", "age", "sex=M"}
    at_risk = pd.read_csv(out / "km_at_risk.csv")
    assert at_risk["group"].tolist() == ["Q1", "Q2", "Q3", "Q4"] and (at_risk["0"] == 200).all()
    assert (out / "km_cxr_age_quartiles.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for needle in ("per 5 years", "likelihood-ratio", "Proportional-hazards", "km_cxr_age_quartiles.png",
                   "Numbers at risk", "reference 'F'", "cox.csv"):
        assert needle in report


def test_json_output_matches_the_csv(run):
    result, out = run
    data = json.loads(result.stdout)
    assert data["n"] == 800 and data["output"] == str(out)
    cox = pd.read_csv(out / "cox.csv")
    assert [r["hr_per_5y"] for r in data["cox"]] == pytest.approx(cox["hr_per_5y"].tolist(), rel=1e-12)
    assert data["lr_test"]["full"] == "cxr_age_adjusted" and len(data["kaplan_meier"]["groups"]) == 4


def test_plotting_leaves_pyplot_alone(simulate, tmp_path):
    """The KM plot is a bare Figure: pyplot is not imported, or, if another test loaded it, gains no figure."""
    from cxrkit.survival import kaplan_meier_by_quartile, plot_kaplan_meier, validate_cohort

    loaded = "matplotlib.pyplot" in sys.modules
    figures = sys.modules["matplotlib.pyplot"].get_fignums() if loaded else None
    cohort = validate_cohort(simulate(9, n=200), time="years", event="died", predicted_age="cxr_age", age="age")
    plot_kaplan_meier(kaplan_meier_by_quartile(cohort), tmp_path / "km.png")
    assert ("matplotlib.pyplot" in sys.modules) == loaded
    if loaded:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == figures


def test_bad_input_is_a_cxrkit_error(simulate, survival_app, tmp_path):
    frame = simulate(8, n=100)
    frame.loc[0, "years"] = -3
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(survival_app, ["survival", str(tmp_path / "bad.csv"), "--time", "years", "--event", "died",
                                          "--predicted-age", "cxr_age", "--age", "age", "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and isinstance(result.exception, InvalidCohortValues)
    assert "line 2" in str(result.exception) and not (tmp_path / "o").exists()
