"""``cxr evaluate`` end to end through typer: report, foreign gz input, compare, errors."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.evaluate import NoOverlap, PrefixMatchesNothing

runner = CliRunner()


def test_foreign_gz_with_id_column_and_prefix(fixture_dir, evaluate_app, tmp_path):
    ours = pd.read_csv(fixture_dir / "predictions.csv")
    ours = ours[ours["status"] == "ok"]
    foreign = pd.DataFrame({"Image Index": ours["file"].str.rsplit("/", n=1).str[-1],
                            "prob_Effusion": ours["Effusion"], "prob_Cardiomegaly": ours["Cardiomegaly"]})
    gz = tmp_path / "theirs.csv.gz"
    with gzip.open(gz, "wt") as f:
        foreign.to_csv(f, index=False)
    out = tmp_path / "out"
    result = runner.invoke(evaluate_app, [
        "evaluate", "predictions", str(gz), "--id-column", "Image Index", "--prefix", "prob_",
        "--labels", str(fixture_dir / "labels.csv"), "--output", str(out), "--bootstrap", "40", "--seed", "3",
        "--threshold-method", "f1", "--no-plots", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["label"] for r in rows] == ["Effusion", "Cardiomegaly", "mean"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics.loc[1, "auc"] == pytest.approx(211 / 231, abs=1e-12)
    assert (out / "report.md").is_file() and "maximum F1" in (out / "report.md").read_text()


def test_thresholds_from_a_validation_run(fixture_dir, evaluate_app, tmp_path):
    args = ["evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels",
            str(fixture_dir / "labels.csv"), "--bootstrap", "0", "--no-plots"]
    assert runner.invoke(evaluate_app, [*args, "--output", str(tmp_path / "val")]).exit_code == 0
    validation = pd.read_csv(tmp_path / "val" / "metrics.csv")
    validation.loc[0, "threshold"] = 0.5
    validation.to_csv(tmp_path / "val.csv", index=False)
    result = runner.invoke(evaluate_app, [*args, "--output", str(tmp_path / "test"),
                                          "--thresholds-from", str(tmp_path / "val.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "test" / "metrics.csv").loc[0, "threshold"] == 0.5


def test_compare_writes_compare_csv(fixture_dir, evaluate_app, tmp_path):
    b = pd.read_csv(fixture_dir / "predictions.csv")
    b["Pneumonia"] = 1 - b["Pneumonia"]  # a much worse model B on Pneumonia
    b.to_csv(tmp_path / "b.csv", index=False)
    result = runner.invoke(evaluate_app, [
        "evaluate", "compare", str(fixture_dir / "predictions.csv"), str(tmp_path / "b.csv"),
        "--labels", str(fixture_dir / "labels.csv"), "--output", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "cmp" / "compare.csv").set_index("label")
    assert list(frame.reset_index().columns) == ["label", "auc_a", "auc_b", "diff", "z", "p_value", "n"]
    assert frame.loc["Effusion", "p_value"] == 1.0
    assert frame.loc["Pneumonia", "auc_b"] == pytest.approx(1 - 121 / 164, abs=1e-12)
    assert frame.loc["Pneumonia", "p_value"] < 0.05 and frame.loc["Pneumonia", "n"] == 51


def test_errors_are_cxrkit_errors(fixture_dir, evaluate_app, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,Effusion\nzzz_1.png,1\nzzz_2.png,0\n")
    base = ["--output", str(tmp_path / "o"), "--bootstrap", "0", "--no-plots"]
    result = runner.invoke(evaluate_app, ["evaluate", "predictions", str(fixture_dir / "predictions.csv"),
                                          "--labels", str(labels), *base])
    assert isinstance(result.exception, NoOverlap) and "zzz_1.png" in str(result.exception)
    result = runner.invoke(evaluate_app, ["evaluate", "predictions", str(fixture_dir / "predictions.csv"),
                                          "--id-column", "file", "--prefix", "prob_", "--labels", str(labels), *base])
    assert isinstance(result.exception, PrefixMatchesNothing)
    result = runner.invoke(evaluate_app, ["evaluate", "predictions", "--labels", str(labels), *base])
    assert result.exit_code == 2 and "Missing argument 'predictions'" in " ".join(result.output.split())
