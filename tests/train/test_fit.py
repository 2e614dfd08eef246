"""Tiny end-to-end fits: a weight file + card whose thresholds and metrics come from validation only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cxrkit import models
from cxrkit.evaluate import auroc, choose_threshold
from cxrkit.train import config_from_dict, fit, predict_logits, prepare_data

from .conftest import tiny_config


def test_multilabel_fit_writes_weights_and_card_from_validation(tiny_csv, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_csv, tmp_path, data={"augment": {"preset": "xrv"}},
                                       loss={"pos_weight": "balanced"}))
    data = prepare_data(cfg)
    weights = fit(cfg, data=data)
    assert weights.is_file() and weights.suffix == ".safetensors"
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["labels"] == ["A", "B", "C"] and card["task"] == "multilabel" and card["input_size"] == 32
    assert "research only" in card["intended_use"].lower() and "demonstration" in card["intended_use"].lower()
    split = card["training"]["split"]
    assert split["train"]["images"] + split["valid"]["images"] == 40
    assert card["metrics"]["validation"]["thresholds_chosen_on"] == "validation"
    assert card["threshold_method"] == "youden"
    assert card["training"]["hardware"] and card["training"]["wall_time_s"] > 0

    # Reload through the registry's file path and recompute everything on the validation split.
    model = models.create(str(weights))
    valid = data.valid_set
    probs = torch.sigmoid(predict_logits(model, valid)).numpy()
    truth = valid.targets.numpy()
    assert set(valid.patients).isdisjoint(set(data.train_set.patients))
    for j, label in enumerate(card["labels"]):
        expected = choose_threshold(truth[:, j], probs[:, j], "youden")
        entry = card["metrics"]["validation"]["auc"][label]
        if math.isnan(expected) or not 0 < expected < 1:
            assert label not in card["thresholds"]
            continue
        assert card["thresholds"][label] == pytest.approx(expected, rel=1e-6)
        assert entry["auc"] == pytest.approx(auroc(truth[:, j], probs[:, j]), rel=1e-6)
        assert entry["ci_low"] <= entry["auc"] <= entry["ci_high"]
    # The validation report is written beside the run (metrics.csv from cxrkit.evaluate).
    assert (tmp_path / "run" / "validation" / "metrics.csv").is_file()


def test_threshold_method_f1_and_runs_keep_the_best(tiny_csv, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_csv, tmp_path, select={"threshold_method": "f1", "bootstrap": 10},
                                       trainer={"max_epochs": 1}))
    weights = fit(cfg, runs=2)
    card = json.loads(weights.with_suffix(".json").read_text())
    runs = card["training"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    best = min(runs, key=lambda r: r["val_loss"])
    assert card["training"]["selected_seed"] == best["seed"]
    assert card["threshold_method"] in ("f1", None)
    assert (tmp_path / "run" / "run0-seed0" / "run.json").is_file()


def test_multiclass_fit_with_class_weights_and_oversampling(tiny_folders, tmp_path):
    base = {
        "name": "test.covid3", "task": "multiclass", "output_dir": str(tmp_path / "mc"),
        "model": {"architecture": "test-tinycnn", "input_size": 32},
        "data": {"dataset": "folder", "root": str(tiny_folders), "batch_size": 4,
                 "split": {"train": 0.7, "valid": 0.3}},
        "loss": {"class_weights": "balanced", "class_multiplier": [2.0, 1.0, 1.0]},
        "trainer": {"max_epochs": 1, "accelerator": "cpu"}, "select": {"bootstrap": 10},
    }
    weights = fit(config_from_dict(base))
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["task"] == "multiclass" and card["labels"] == ["covid", "normal", "pneumonia"]
    assert card["thresholds"] == {} and card["threshold_method"] == "argmax"
    assert 0.0 <= card["metrics"]["validation"]["accuracy"] <= 1.0
    base["loss"] = {}
    base["data"]["oversample"] = True
    base["output_dir"] = str(tmp_path / "mc2")
    assert fit(config_from_dict(base)).is_file()


def test_regression_fit_for_age(tiny_csv, tmp_path):
    raw = tiny_config(tiny_csv, tmp_path, task="regression", name="test.age",
                      data={"target": "age"}, loss={"regression": "l1"}, select={"metric": "val_mae"})
    weights = fit(config_from_dict(raw))
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["task"] == "regression" and card["labels"] == ["age"] and card["thresholds"] == {}
    mae = card["metrics"]["validation"]["mae"]
    # The head starts at the training mean age, so even 2 tiny epochs are within the age spread.
    assert 0 <= mae < 20
    model = models.create(str(weights))
    assert model.card.task == "regression"


def test_densenet121_small_input_trains(tiny_csv, tmp_path):
    """The real architecture, at 32 px and one epoch: the loop is not specific to the tiny CNN."""
    raw = tiny_config(tiny_csv, tmp_path, model={"architecture": "densenet121", "input_size": 32},
                      trainer={"max_epochs": 1, "limit_train_batches": 2})
    weights = fit(config_from_dict(raw))
    model = models.create(str(weights))
    assert model.card.architecture == "densenet121" and len(model.card.labels) == 3
    assert np.isfinite(json.loads(weights.with_suffix(".json").read_text())["training"]["runs"][0]["val_loss"])
