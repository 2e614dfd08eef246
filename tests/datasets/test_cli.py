"""`cxr datasets list | summary | shard`, through typer's test runner."""

from __future__ import annotations

import json

import pandas as pd
import pytest

typer_testing = pytest.importorskip("typer.testing")

from cxrkit.cli.datasets import app  # noqa: E402

runner = typer_testing.CliRunner()


def test_list_json():
    result = runner.invoke(app, ["list", "--format", "json"])
    assert result.exit_code == 0, result.output
    names = {row["name"] for row in json.loads(result.output)}
    assert {"nih", "padchest", "chexpert", "folder", "csv"} <= names


def test_summary_with_images_writes_counts(nih_subset, tmp_path):
    images, labels = nih_subset
    out = tmp_path / "counts.csv"
    result = runner.invoke(app, ["summary", "nih", "--root", str(images), "--labels", str(labels),
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "1200 images, 881 patients" in result.output and "missing images: 0" in result.output
    counts = pd.read_csv(out)
    assert list(counts.columns) == ["label", "positive", "negative", "unknown"]
    got = dict(zip(counts["label"], counts["positive"], strict=True))
    assert got["Pneumonia"] == 503 and got["Infiltration"] == 224 and got["Hernia"] == 8 and len(counts) == 14
    assert (counts["positive"] + counts["negative"] + counts["unknown"] == 1200).all()


def test_summary_no_images_json_with_filters(nih_subset):
    _, labels = nih_subset
    result = runner.invoke(app, ["summary", "nih", "--labels", str(labels), "--no-images", "--views", "PA",
                                 "--one-per-patient", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    raw = pd.read_csv(labels)
    pa = raw[raw["View Position"] == "PA"]
    assert data["images"] == data["patients"] == pa["Patient ID"].nunique()
    assert data["views"] == {"PA": data["images"]} and "missing_images" not in data


def test_summary_errors_exit_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["summary", "nih", "--labels", str(bad), "--no-images"])
    assert result.exit_code == 1
    assert "missing column(s)" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["summary", "nope", "--no-images"])
    assert result.exit_code == 1 and "unknown dataset 'nope'" in result.output


def test_shard_command(nih_subset, tmp_path):
    images, labels = nih_subset
    sub = tmp_path / "few.csv"
    pd.read_csv(labels).head(6).to_csv(sub, index=False)
    result = runner.invoke(app, ["shard", "nih", "--root", str(images), "--labels", str(sub), "--out",
                                 str(tmp_path / "shards"), "--size", "32", "--per-shard", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    index = json.loads(result.output)
    assert index["count"] == 6 and len(index["shards"]) == 2
