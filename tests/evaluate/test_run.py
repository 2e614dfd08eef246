"""``evaluate_to_folder`` / ``compare_to_folder``: the library call behind ``cxr evaluate``, without the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.evaluate import (InputFileError, compare_to_folder, evaluate_predictions, evaluate_to_folder,
                             load_labels_csv, load_predictions, read_thresholds)


def test_library_run_equals_the_command(fixture_dir, evaluate_app, tmp_path):
    run = evaluate_to_folder(tmp_path / "lib", fixture_dir / "labels.csv", predictions=fixture_dir / "predictions.csv",
                             n_bootstrap=30, seed=4, plots=False, group_by=["Patient Age"], age_bands=[0, 50])
    labels = load_labels_csv(fixture_dir / "labels.csv")
    direct = evaluate_predictions(load_predictions(fixture_dir / "predictions.csv"), labels.labels,
                                  patients=labels.patients, n_bootstrap=30, seed=4)
    pd.testing.assert_frame_equal(run.result.table, direct.table)
    assert run.subgroups is not None and set(run.subgroups.table["group"]) == {"0-49", "50+"}
    assert run.shortcut is None and (tmp_path / "lib" / "report.md").is_file()
    result = CliRunner().invoke(evaluate_app, [
        "evaluate", "--predictions", str(fixture_dir / "predictions.csv"), "--labels", str(fixture_dir / "labels.csv"),
        "--output", str(tmp_path / "cli"), "--bootstrap", "30", "--seed", "4", "--no-plots", "--group-by",
        "Patient Age", "--age-bands", "0,50", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["metrics"]
    assert [r["label"] for r in rows] == run.result.table["label"].tolist()
    assert [r["auc"] for r in rows] == pytest.approx(run.result.table["auc"].tolist(), nan_ok=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli" / "metrics.csv"), pd.read_csv(tmp_path / "lib" / "metrics.csv"))


def test_thresholds_from_a_metrics_file(fixture_dir, tmp_path):
    evaluate_to_folder(tmp_path / "val", fixture_dir / "labels.csv", predictions=fixture_dir / "predictions.csv",
                       n_bootstrap=0, plots=False)
    thresholds = read_thresholds(tmp_path / "val" / "metrics.csv")
    assert set(thresholds) == {"Effusion", "Pneumonia", "Cardiomegaly"} and "mean" not in thresholds
    (tmp_path / "bad.csv").write_text("label,cutoff\nEffusion,0.5\n")
    with pytest.raises(InputFileError, match="'label' and 'threshold' columns"):
        read_thresholds(tmp_path / "bad.csv")
    with pytest.raises(InputFileError, match="cannot read thresholds"):
        read_thresholds(tmp_path / "missing.csv")


def test_one_input_and_a_dataset_for_a_model(fixture_dir, tmp_path):
    with pytest.raises(InputFileError, match="not both or neither"):
        evaluate_to_folder(tmp_path, fixture_dir / "labels.csv")
    with pytest.raises(InputFileError, match="dataset split"):
        evaluate_to_folder(tmp_path, fixture_dir / "labels.csv", model="densenet121.nih-demo")


def test_compare_to_folder_writes_the_delong_table(fixture_dir, tmp_path):
    frame = compare_to_folder(fixture_dir / "predictions.csv", fixture_dir / "predictions.csv",
                              fixture_dir / "labels.csv", tmp_path)
    assert (frame["p_value"] == 1.0).all() and (tmp_path / "compare.csv").is_file()
