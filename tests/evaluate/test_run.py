"""``evaluate_file_to_folder`` / ``evaluate_model_to_folder`` / ``compare_to_folder``: the library calls
behind ``cxr evaluate``'s sub-commands, without the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.errors import InvalidArgument
from cxrkit.evaluate import (
    DatasetSplit,
    InputFileError,
    LabelFile,
    Scoring,
    Subgroups,
    compare_to_folder,
    evaluate_file_to_folder,
    evaluate_model_to_folder,
    evaluate_predictions,
    load_labels_csv,
    load_predictions,
    read_thresholds,
)


def test_library_run_equals_the_command(fixture_dir, evaluate_app, tmp_path):
    run = evaluate_file_to_folder(fixture_dir / "predictions.csv", fixture_dir / "labels.csv", tmp_path / "lib",
                                  scoring=Scoring(n_bootstrap=30, seed=4), plots=False,
                                  subgroups=Subgroups(group_by=("Patient Age",), age_bands=(0, 50)))
    labels = load_labels_csv(fixture_dir / "labels.csv")
    direct = evaluate_predictions(load_predictions(fixture_dir / "predictions.csv"), labels.labels,
                                  patients=labels.patients, n_bootstrap=30, seed=4)
    pd.testing.assert_frame_equal(run.result.table, direct.table)
    assert run.subgroups is not None and set(run.subgroups.table["group"]) == {"0-49", "50+"}
    assert run.shortcut is None and (tmp_path / "lib" / "report.md").is_file()
    result = CliRunner().invoke(evaluate_app, [
        "evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels", str(fixture_dir / "labels.csv"),
        "--output", str(tmp_path / "cli"), "--bootstrap", "30", "--seed", "4", "--no-plots", "--group-by",
        "Patient Age", "--age-bands", "0,50", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["metrics"]
    assert [r["label"] for r in rows] == run.result.table["label"].tolist()
    assert [r["auc"] for r in rows] == pytest.approx(run.result.table["auc"].tolist(), nan_ok=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cli" / "metrics.csv"), pd.read_csv(tmp_path / "lib" / "metrics.csv"))
    # report.md's "Reproduce" section is the library call, and running it again gives the same table
    report = (tmp_path / "lib" / "report.md").read_text()
    call = report.split("## Reproduce")[1].split("```")[1].strip()
    assert call.splitlines()[-1].startswith("evaluate_file_to_folder(") and "n_bootstrap=30" in call
    namespace: dict = {}
    exec(call.replace(repr(tmp_path / "lib").replace("PosixPath", "Path"), repr(str(tmp_path / "again"))), namespace)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again" / "metrics.csv"), pd.read_csv(tmp_path / "lib" / "metrics.csv"))


def test_thresholds_from_a_metrics_file(fixture_dir, tmp_path):
    evaluate_file_to_folder(fixture_dir / "predictions.csv", fixture_dir / "labels.csv", tmp_path / "val",
                            scoring=Scoring(n_bootstrap=0), plots=False)
    thresholds = read_thresholds(tmp_path / "val" / "metrics.csv")
    assert set(thresholds) == {"Effusion", "Pneumonia", "Cardiomegaly"} and "mean" not in thresholds
    (tmp_path / "bad.csv").write_text("label,cutoff\nEffusion,0.5\n")
    with pytest.raises(InputFileError, match="'label' and 'threshold' columns"):
        read_thresholds(tmp_path / "bad.csv")
    with pytest.raises(InputFileError, match="cannot read thresholds"):
        read_thresholds(tmp_path / "missing.csv")


def test_specs_refuse_bad_values_as_typed_errors(fixture_dir, tmp_path):
    """Each spec checks its values where it is made, with errors that are also ValueErrors."""
    with pytest.raises(InvalidArgument, match="dataset split"):
        DatasetSplit(None, fixture_dir / "labels.csv", None)
    with pytest.raises(ValueError, match="`age_bands` must be increasing"):
        Subgroups(group_by=("age",), age_bands=(60, 40))
    with pytest.raises(InvalidArgument, match="`shortcut_check` needs `group_by`"):
        Subgroups(shortcut_check=True)
    with pytest.raises(InvalidArgument, match="'chexpret'"):
        LabelFile(fixture_dir / "labels.csv", "chexpret")
    with pytest.raises(InvalidArgument, match="plain labels CSV"):
        LabelFile(fixture_dir / "labels.csv", "nih", patient_column="pid")
    with pytest.raises(InvalidArgument, match="pixels"):
        evaluate_file_to_folder(fixture_dir / "predictions.csv", fixture_dir / "labels.csv", tmp_path,
                                subgroups=Subgroups(group_by=("Patient Age",), shortcut_check=True))
    assert evaluate_model_to_folder.__kwdefaults__["plots"] is True


def test_compare_to_folder_writes_the_delong_table(fixture_dir, tmp_path):
    frame = compare_to_folder(fixture_dir / "predictions.csv", fixture_dir / "predictions.csv",
                              fixture_dir / "labels.csv", tmp_path)
    assert (frame["p_value"] == 1.0).all() and (tmp_path / "compare.csv").is_file()
