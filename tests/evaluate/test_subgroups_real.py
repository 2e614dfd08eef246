"""Subgroup evaluation and the shortcut check on the real NIH sample: its two draws differ.

The shared sample is two draws of ChestX-ray14 (``sources.csv``): one kept only Pneumonia
or No Finding films. The check must see that the bundled model's features give the draw
away while label rates differ between draws. Skips without ``../shared/data``.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app

runner = CliRunner()
PER_SOURCE = 150


@pytest.fixture(scope="module")
def nih_two_draws(shared_data, tmp_path_factory):
    """A label file with the first 150 images (by name) of each draw, and the sources sidecar."""
    nih = shared_data / "nih"
    sources = pd.read_csv(nih / "sources.csv")
    chosen = sources.sort_values("Image Index").groupby("source").head(PER_SOURCE)["Image Index"]
    labels = pd.read_csv(nih / "Data_Entry_2017_v2020.csv")
    path = tmp_path_factory.mktemp("nih") / "Data_Entry_subset.csv"
    labels[labels["Image Index"].isin(set(chosen))].to_csv(path, index=False)
    return nih, path


def test_shortcut_check_flags_the_source_confound_of_the_default_model(nih_two_draws, tmp_path):
    nih, label_file = nih_two_draws
    out = tmp_path / "report"
    result = runner.invoke(app, [
        "evaluate", "model", "densenet121.nih-demo", "--dataset", "nih", "--labels", str(label_file),
        "--images", str(nih / "images"), "--split", "all", "--group-by", "source,sex", "--metadata",
        str(nih / "sources.csv"), "--shortcut-check", "--bootstrap", "200", "--no-plots", "--format", "json", "--output", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    probe = data["shortcut"]
    assert probe["column"] == "source" and probe["groups"] == {"pneumonia-or-no-finding-selection": PER_SOURCE,
                                                               "reproduce-chexnet-starter": PER_SOURCE}
    assert probe["auc"] >= 0.7 and probe["ci_low"] > 0.5, probe  # the draw is visible in the pooled features
    assert "Pneumonia" in probe["differing_labels"]  # 49 % vs 10 % in the two draws
    assert probe["warning"].startswith("Possible shortcut") and "Possible shortcut" in result.stderr
    report = (out / "report.md").read_text()
    assert "> **Warning.** Possible shortcut" in report and "### source" in report
    table = pd.read_csv(out / "subgroups.csv")
    means = table[(table["column"] == "source") & (table["label"] == "mean")].set_index("group")
    assert means["n_images"].tolist() == [PER_SOURCE, PER_SOURCE]
    rates = pd.read_csv(out / "label_rates.csv").set_index(["column", "label"])
    assert rates.loc[("source", "Pneumonia"), "rate:pneumonia-or-no-finding-selection"] > 0.3


def test_pixel_probe_needs_no_model(nih_two_draws, tmp_path):
    """The draws differ in the films themselves, not only in what a model learnt from them."""
    nih, label_file = nih_two_draws
    preds = tmp_path / "preds.csv"
    names = pd.read_csv(label_file)["Image Index"]
    frame = pd.DataFrame({"file": names, "status": "ok", "error": "", "Pneumonia": 0.5})
    frame.to_csv(preds, index=False)
    result = runner.invoke(app, [
        "evaluate", "predictions", str(preds), "--labels", str(label_file), "--images", str(nih / "images"),
        "--group-by", "source", "--metadata", str(nih / "sources.csv"), "--shortcut-check", "--probe-input",
        "pixels", "--bootstrap", "200", "--no-plots", "--format", "json", "--output", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    probe = json.loads(result.stdout)["shortcut"]
    assert probe["inputs"] == "pixels" and probe["n_images"] == 2 * PER_SOURCE
    assert 0.0 <= probe["auc"] <= 1.0 and probe["ci_low"] <= probe["auc"] <= probe["ci_high"]
