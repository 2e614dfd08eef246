"""Training that does not reward a subgroup shortcut: metadata, stratified splits, subgroup
selection, label masks, group-balanced / down-weighted / label-aware sampling, per-group cards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cxrkit.train import fit
from cxrkit.train.config import ConfigError, config_from_dict
from cxrkit.train.fit import prepare_data

from .conftest import tiny_config


@pytest.fixture(scope="module")
def sites(tiny_csv, tmp_path_factory):
    """A sidecar CSV: patients p0-p5 (12 films) are site 'small', the rest site 'large'."""
    path = tmp_path_factory.mktemp("meta") / "sites.csv"
    rows = ["Image Index,site"] + [f"img{i:03d}.png,{'small' if i < 12 else 'large'}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _cfg(tiny_csv, tmp_path, sites, **data):
    raw = tiny_config(tiny_csv, tmp_path, data={"metadata": [str(sites)], "stratify": "site", **data})
    return config_from_dict(raw)


def _site(part) -> np.ndarray:
    return part.dataset.frame["site"].to_numpy()


def test_stratified_split_keeps_both_sites_in_validation(tiny_csv, tmp_path, sites):
    dm = prepare_data(_cfg(tiny_csv, tmp_path, sites))
    valid, train = _site(dm.valid_set), _site(dm.train_set)
    assert (valid == "small").sum() == pytest.approx(0.3 * 12, abs=2) and (train == "small").any()
    assert not set(dm.valid_set.patients) & set(dm.train_set.patients)


def test_label_masks_apply_to_training_only(tiny_csv, tmp_path, sites):
    rule = {"column": "site", "value": "large", "labels": "all", "keep": ["C"]}
    dm = prepare_data(_cfg(tiny_csv, tmp_path, sites, mask_labels=[rule]))
    plain = prepare_data(_cfg(tiny_csv, tmp_path, sites))
    large = _site(dm.train_set) == "large"
    targets = dm.train_set.targets.numpy()
    assert np.isnan(targets[large][:, :2]).all() and not np.isnan(targets[~large][:, :2]).any()
    np.testing.assert_array_equal(targets[:, 2], plain.train_set.targets.numpy()[:, 2])  # C kept as it was
    np.testing.assert_array_equal(dm.valid_set.targets.numpy(), plain.valid_set.targets.numpy())


def test_group_balanced_down_weighted_and_label_aware_sampling(tiny_csv, tmp_path, sites):
    dm = prepare_data(_cfg(tiny_csv, tmp_path, sites, sampler={"kind": "group", "column": "site"}))
    w = dm.sample_weights().numpy()
    site = _site(dm.train_set)
    assert w[site == "small"].sum() == pytest.approx(0.5) and w[site == "large"].sum() == pytest.approx(0.5)
    dm = prepare_data(_cfg(tiny_csv, tmp_path, sites, sampler={"kind": "weights", "column": "site",
                                                              "weights": {"small": 0.0}}))
    w = dm.sample_weights()
    drawn = torch.multinomial(w, 500, replacement=True, generator=torch.Generator().manual_seed(0)).numpy()
    assert (_site(dm.train_set)[drawn] == "large").all()
    dm = prepare_data(_cfg(tiny_csv, tmp_path, sites, sampler={"kind": "labels"}))
    w = dm.sample_weights().numpy()
    labels = np.nan_to_num(dm.train_set.targets.numpy())
    rarest = int(np.argmin(labels.sum(0)))
    has_rarest = labels[:, rarest] == 1
    assert w[has_rarest].min() >= w[~has_rarest & (labels.sum(1) > 0)].max() - 1e-12


def test_select_on_a_subgroup_and_card_reports_every_group(tiny_csv, tmp_path, sites):
    cfg = _cfg(tiny_csv, tmp_path, sites, select_on={"column": "site", "value": "small"})
    card = json.loads(fit(cfg).with_suffix(".json").read_text())
    split = card["training"]["split"]
    valid_small = int((_site(prepare_data(cfg).valid_set) == "small").sum())
    assert split["selected_on"] == {"column": "site", "value": "small", "images": valid_small,
                                    "patients": valid_small // 2}
    history = card["training"]["history"]
    assert all("val_loss_all" in h and h["val_loss"] != h["val_loss_all"] for h in history)
    validation = card["metrics"]["validation"]
    assert validation["selected_on"] == "validation images with site == small"
    assert "optimistic" in validation["how_far_to_trust"] and f"{valid_small} validation images" in validation["how_far_to_trust"]
    groups = validation["subgroups"]
    assert set(groups["site"]) == {"small", "large"} and "view" not in groups  # csv data: no view column
    assert groups["site"]["small"]["images"] + groups["site"]["large"]["images"] == split["valid"]["images"]
    assert set(groups["age"]) <= {"0-39", "40-59", "60+"} and "auc" in groups["site"]["large"]
    assert "gap_to_rest" in groups["site"]["small"]


def test_regression_card_has_per_group_mae(tiny_csv, tmp_path, sites):
    raw = tiny_config(tiny_csv, tmp_path, task="regression", data={"metadata": [str(sites)], "target": "age"},
                      select={"metric": "val_mae", "bootstrap": 20, "groups": ["site"]})
    card = json.loads(fit(config_from_dict(raw)).with_suffix(".json").read_text())
    groups = card["metrics"]["validation"]["subgroups"]["site"]
    assert set(groups) <= {"small", "large"} and all("mae" in g and "mae_of_training_mean" in g for g in groups.values())


@pytest.mark.parametrize("data, key", [
    ({"sampler": {"kind": "stripes"}}, "data.sampler.kind"),
    ({"sampler": {"kind": "group"}}, "data.sampler.column"),
    ({"sampler": {"kind": "weights", "column": "site"}}, "data.sampler.weights"),
    ({"mask_labels": [{"value": "x"}]}, "data.mask_labels[0].column"),
    ({"select_on": {"value": "x"}}, "data.select_on.column"),
    ({"mask_labels": [{"column": "site", "value": "large", "labels": "some"}]}, "data.mask_labels[0].labels"),
])
def test_bad_subgroup_keys_fail_at_load(tiny_csv, tmp_path, data, key):
    with pytest.raises(ConfigError) as info:
        config_from_dict(tiny_config(tiny_csv, tmp_path, data=data))
    assert info.value.key == key


@pytest.mark.parametrize("data, key", [
    ({"select_on": {"column": "site", "value": "nowhere"}}, "data.select_on.value"),
    ({"select_on": {"column": "scanner", "value": "x"}}, "data.select_on.column"),
    ({"mask_labels": [{"column": "site", "value": "large", "labels": ["Z"]}]}, "data.mask_labels[0].labels"),
    ({"sampler": {"kind": "weights", "column": "site", "weights": {"elsewhere": 1.0}}}, "data.sampler.weights"),
])
def test_subgroup_keys_checked_against_the_data(tiny_csv, tmp_path, sites, data, key):
    with pytest.raises(ConfigError) as info:
        prepare_data(_cfg(tiny_csv, tmp_path, sites, **data))
    assert info.value.key == key
