"""Subgroup AUCs, gap tests, label rates, group columns and the shortcut probe."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from cxrkit.datasets.metadata import age_bands, band_labels, join_metadata
from cxrkit.datasets.splits import stratified_patient_split
from cxrkit.evaluate import (
    InputFileError,
    evaluate_predictions,
    evaluate_subgroups,
    group_table,
    label_rates,
    load_labels,
    load_predictions,
    shortcut_probe,
    shortcut_warning,
)

runner = CliRunner()


def _two_sites(n: int = 200, seed: int = 0):
    """Site a: scores follow the label; site b: scores are noise. Patients hold two films each."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:03d}.png" for i in range(n)]
    site = np.where(np.arange(n) < n // 2, "a", "b")
    y = rng.integers(0, 2, n).astype(float)
    good = y + rng.normal(0, 0.5, n)
    noise = rng.normal(0, 1, n)
    score = np.where(site == "a", good, noise)
    frame = lambda v: pd.DataFrame({"Effusion": v}, index=pd.Index(ids))  # noqa: E731
    patients = pd.Series([f"p{i // 2}" for i in range(n)], index=pd.Index(ids))
    return frame(score), frame(y), pd.DataFrame({"site": site}, index=pd.Index(ids)), patients


def test_group_aucs_equal_sklearn_on_each_subset_and_the_gap_is_detected():
    scores, labels, groups, patients = _two_sites()
    result = evaluate_subgroups(scores, labels, groups, patients=patients, n_bootstrap=300, seed=1)
    table = result.table.set_index(["group", "label"])
    for site in ("a", "b"):
        rows = groups["site"] == site
        expected = roc_auc_score(labels.loc[rows, "Effusion"], scores.loc[rows, "Effusion"])
        assert table.loc[(site, "Effusion"), "auc"] == pytest.approx(expected, abs=1e-12)
        assert table.loc[(site, "Effusion"), "n_images"] == 100
        assert table.loc[(site, "Effusion"), "n_patients"] == 50
    assert table.loc[("a", "Effusion"), "auc"] > 0.8 > 0.65 > table.loc[("b", "Effusion"), "auc"]
    gap = result.gaps.set_index(["group", "label"]).loc[("a", "Effusion")]
    assert gap["gap"] == pytest.approx(table.loc[("a", "Effusion"), "auc"] - table.loc[("b", "Effusion"), "auc"])
    assert gap["gap_ci_low"] > 0 and gap["p_value"] < 0.01
    low, high = table.loc[("a", "mean"), ["auc_ci_low", "auc_ci_high"]]
    assert low < table.loc[("a", "mean"), "auc"] < high


def test_no_gap_between_groups_drawn_alike():
    rng = np.random.default_rng(5)
    n = 300
    ids = pd.Index([f"i{i}" for i in range(n)])
    y = rng.integers(0, 2, n).astype(float)
    scores = pd.DataFrame({"Mass": y + rng.normal(0, 1, n)}, index=ids)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n)}, index=ids)
    result = evaluate_subgroups(scores, pd.DataFrame({"Mass": y}, index=ids), groups, n_bootstrap=300, seed=0)
    gap = result.gaps.set_index(["group", "label"]).loc[("F", "Mass")]
    assert gap["gap_ci_low"] < 0 < gap["gap_ci_high"] and gap["p_value"] > 0.05
    assert not result.patient_level


def test_a_group_without_one_class_has_no_auc_and_no_gap():
    ids = pd.Index(list("abcdef"))
    labels = pd.DataFrame({"Edema": [1, 0, 1, 0, 0, 0]}, index=ids, dtype=float)
    scores = pd.DataFrame({"Edema": [0.9, 0.1, 0.8, 0.3, 0.2, 0.4]}, index=ids)
    groups = pd.DataFrame({"view": ["AP", "AP", "AP", "PA", "PA", None]}, index=ids)
    result = evaluate_subgroups(scores, labels, groups, n_bootstrap=50)
    pa = result.table.set_index(["group", "label"]).loc[("PA", "Edema")]
    assert np.isnan(pa["auc"]) and pa["n_pos"] == 0 and pa["n_images"] == 2  # the None image is in no group
    assert result.gaps.empty


def test_label_rates_flag_a_selection_confound():
    ids = pd.Index([f"i{i}" for i in range(200)])
    source = np.repeat(["selected", "random"], 100)
    pneumonia = np.r_[np.ones(50), np.zeros(50), np.ones(10), np.zeros(90)]
    nodule = np.tile([1.0, 0.0, 0.0, 0.0], 50)
    labels = pd.DataFrame({"Pneumonia": pneumonia, "Nodule": nodule}, index=ids)
    rates = label_rates(labels, pd.DataFrame({"source": source}, index=ids)).set_index("label")
    assert rates.loc["Pneumonia", "rate:selected"] == 0.5 and rates.loc["Pneumonia", "rate:random"] == 0.1
    assert rates.loc["Pneumonia", "p_value"] < 1e-6 and rates.loc["Nodule", "p_value"] > 0.5


def test_age_bands_and_their_names():
    assert band_labels([0, 40, 60, 80]) == ["0-39", "40-59", "60-79", "80+"]
    bands = age_bands(pd.Series([5, 39, 40, 79.5, 80, 101, np.nan, -1]), [0, 40, 60, 80])
    assert bands.tolist() == ["0-39", "0-39", "40-59", "60-79", "80+", "80+", None, None]
    with pytest.raises(ValueError):
        age_bands([1, 2], [40, 20])


def test_group_table_reads_label_file_columns_adapter_names_and_sidecars(tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"Image Index": ["a.png", "b.png", "c.png"], "Patient Gender": ["F", "M", "F"],
                  "Patient Age": [30, 55, 70], "Effusion": [1, 0, 1]}).to_csv(labels, index=False)
    sidecar = tmp_path / "sources.csv"
    pd.DataFrame({"file": ["/x/a.png", "b.png"], "source": ["site-1", "site-2"]}).to_csv(sidecar, index=False)
    table = group_table(["sex", "source", "Patient Age"], label_file=labels, metadata=[sidecar], age_bands=[0, 40, 60])
    assert table.loc["a.png"].tolist() == ["F", "site-1", "0-39"]
    assert table.loc["c.png", "Patient Age"] == "60+" and pd.isna(table.loc["c.png", "source"])
    with pytest.raises(InputFileError, match="no column 'scanner'.*Patient Gender"):
        group_table(["scanner"], label_file=labels)
    many = tmp_path / "many.csv"
    pd.DataFrame({"file": [f"{i}.png" for i in range(30)], "dose": np.arange(30)}).to_csv(many, index=False)
    with pytest.raises(InputFileError, match="`age_bands`"):
        group_table(["dose"], metadata=[many])


def test_join_metadata_matches_by_file_name_and_refuses_clashes(tmp_path):
    frame = pd.DataFrame({"path": ["sub/a.png", "b.png"], "view": ["PA", "AP"]})
    sidecar = tmp_path / "m.csv"
    pd.DataFrame({"Image Index": ["a.png"], "site": ["north"]}).to_csv(sidecar, index=False)
    joined = join_metadata(frame, [sidecar])
    assert joined["site"].tolist()[0] == "north" and pd.isna(joined["site"].tolist()[1])
    clash = tmp_path / "clash.csv"
    pd.DataFrame({"Image Index": ["a.png"], "view": ["LL"]}).to_csv(clash, index=False)
    with pytest.raises(ValueError, match="already exist"):
        join_metadata(frame, [clash])


def test_stratified_split_keeps_each_strata_share_and_patients_whole():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"p{i}" for i in range(300)], rng.integers(1, 4, 300))
    home = {p: ("small" if i % 6 == 0 else "large") for i, p in enumerate(dict.fromkeys(patients))}
    strata = np.array([home[p] for p in patients])
    parts = stratified_patient_split(patients, strata, {"train": 0.8, "valid": 0.2}, seed=3)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(patients)))
    assert not set(patients[parts["train"]]) & set(patients[parts["valid"]])
    for value in ("small", "large"):
        share = (strata[parts["valid"]] == value).sum() / (strata == value).sum()
        assert share == pytest.approx(0.2, abs=0.04)


def test_shortcut_probe_finds_a_visible_group_and_warns_only_with_differing_rates():
    rng = np.random.default_rng(0)
    n = 240
    group = np.repeat(["x", "y"], n // 2)
    patients = [f"p{i // 2}" for i in range(n)]
    visible = rng.normal(0, 1, (n, 20)) + (group == "x")[:, None] * 1.5
    probe = shortcut_probe(visible, group, patients, column="source", n_bootstrap=200)
    assert probe.auc > 0.95 and probe.ci_low > 0.9 and probe.groups == {"x": 120, "y": 120}
    assert shortcut_warning(probe, ["Pneumonia"]).warning.startswith("Possible shortcut")
    assert shortcut_warning(probe, []).warning is None
    hidden = shortcut_probe(rng.normal(0, 1, (n, 20)), group, patients, column="source", n_bootstrap=200)
    assert 0.3 < hidden.auc < 0.7 and shortcut_warning(hidden, ["Pneumonia"]).warning is None


@pytest.mark.slow
def test_cli_group_by_writes_tables_plot_and_report(fixture_dir, evaluate_app, tmp_path):
    sidecar = tmp_path / "sites.csv"
    names = pd.read_csv(fixture_dir / "labels.csv")["Image Index"]
    pd.DataFrame({"Image Index": names, "site": np.where(np.arange(len(names)) % 2, "b", "a")}).to_csv(sidecar, index=False)
    out = tmp_path / "out"
    result = runner.invoke(evaluate_app, [
        "evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels", str(fixture_dir / "labels.csv"),
        "--output", str(out), "--bootstrap", "50", "--group-by", "site,Patient Age", "--age-bands", "0,50",
        "--metadata", str(sidecar), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    groups = {(r["column"], r["group"]) for r in data["subgroups"]}
    assert groups == {("site", "a"), ("site", "b"), ("Patient Age", "0-49"), ("Patient Age", "50+")}
    table = pd.read_csv(out / "subgroups.csv")
    pooled = evaluate_predictions(load_predictions(fixture_dir / "predictions.csv")[["Effusion"]],
                                  load_labels(fixture_dir / "labels.csv").labels, n_bootstrap=0)
    assert pooled.n_images == table[(table["column"] == "site") & (table["label"] == "Effusion")]["n_images"].sum()
    assert (out / "plots" / "subgroups_site.png").is_file()
    report = (out / "report.md").read_text()
    assert "## Subgroups" in report and "### site" in report and "gap to rest" in report


def test_cli_group_by_errors(fixture_dir, evaluate_app, tmp_path):
    base = ["evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels",
            str(fixture_dir / "labels.csv"), "--output", str(tmp_path / "o")]
    result = runner.invoke(evaluate_app, [*base, "--group-by", "Patient Age"])
    assert result.exit_code != 0 and "--age-bands" in str(result.exception)
    result = runner.invoke(evaluate_app, [*base, "--shortcut-check"])
    assert "--shortcut-check needs --group-by" in str(result.exception)
    result = runner.invoke(evaluate_app, [*base, "--group-by", "x", "--age-bands", "60,40"])
    assert "--age-bands must be increasing" in str(result.exception)
