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
    validation = card["metrics"]["validation"]
    mae = validation["mae"]
    # The head starts at the training mean age, so even 2 tiny epochs are within the age spread.
    assert 0 <= mae < 20
    assert validation["mae_ci_low"] <= mae <= validation["mae_ci_high"] and validation["mae_ci_low"] < validation["mae_ci_high"]
    assert validation["n"] == card["training"]["split"]["valid"]["images"]
    model = models.create(str(weights))
    assert model.card.task == "regression"
    # The card's MAE is the one the stored model gives on the validation split, recomputed here.
    data = prepare_data(config_from_dict(raw))
    pred = predict_logits(model, data.valid_set).squeeze(1).numpy()
    target = data.valid_set.targets.numpy()
    assert validation["mae"] == pytest.approx(float(np.abs(pred - target).mean()), rel=1e-5)
    assert validation["mae_of_training_mean"] == pytest.approx(
        float(np.abs(data.train_set.targets.numpy().mean() - target).mean()), rel=1e-5)


def test_bfloat16_weights_halve_the_file_and_the_card_measures_them(tiny_csv, tmp_path):
    raw = tiny_config(tiny_csv, tmp_path, task="regression", name="test.age16", weights_dtype="bfloat16",
                      data={"target": "age"}, trainer={"max_epochs": 1})
    weights = fit(config_from_dict(raw))
    from safetensors.torch import load_file

    stored = load_file(str(weights))
    assert all(t.dtype == torch.bfloat16 for t in stored.values() if t.is_floating_point())
    card = json.loads(weights.with_suffix(".json").read_text())
    model = models.create(str(weights))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    data = prepare_data(config_from_dict(raw))
    pred = predict_logits(model, data.valid_set).squeeze(1).numpy()
    assert card["metrics"]["validation"]["mae"] == pytest.approx(
        float(np.abs(pred - data.valid_set.targets.numpy()).mean()), rel=1e-5)


def test_orientation_target_trains_an_eight_way_classifier(tiny_csv, tmp_path):
    from cxrkit.preprocess import ORIENTATIONS, apply_orientation

    raw = tiny_config(tiny_csv, tmp_path, task="multiclass", name="test.orientation",
                      data={"target": "orientation"}, trainer={"max_epochs": 1})
    data = prepare_data(config_from_dict(raw))
    valid, train = data.valid_set, data.train_set
    n = len(valid.upright)
    # validation: every held-out film in all 8 orientations, labelled with the one shown
    assert len(valid) == 8 * n and valid.targets.tolist() == list(range(8)) * n
    for index in (0, 5, 8 * n - 1):
        image, label = valid[index]
        assert int(label) == index % 8
        assert torch.equal(image, apply_orientation(valid.upright.image(index // 8), index % 8))
    # training: one sample per film, the orientation drawn from the sample's seed, same seed -> same sample
    assert len(train) == len(train.upright)
    first, label = train[(3, 12345)]
    again, label2 = train[(3, 12345)]
    assert int(label) == 12345 % 8 and torch.equal(first, again) and int(label2) == int(label)
    weights = fit(config_from_dict(raw), data=data)
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["labels"] == list(ORIENTATIONS) and card["task"] == "multiclass"
    assert card["training"]["split"]["valid"]["images"] == 8 * n
    validation = card["metrics"]["validation"]
    assert 0.0 <= validation["accuracy"] <= 1.0
    assert validation["accuracy_8_orientations"] == pytest.approx(validation["accuracy"])
    assert validation["accuracy_rotation"] >= validation["accuracy"]


@pytest.mark.slow  # a real DenseNet-121: ~15 s on two cores
def test_densenet121_small_input_trains(tiny_csv, tmp_path):
    """The real architecture, at 32 px and one epoch: the loop is not specific to the tiny CNN."""
    raw = tiny_config(tiny_csv, tmp_path, model={"architecture": "densenet121", "input_size": 32},
                      trainer={"max_epochs": 1, "limit_train_batches": 2})
    weights = fit(config_from_dict(raw))
    model = models.create(str(weights))
    assert model.card.architecture == "densenet121" and len(model.card.labels) == 3
    assert np.isfinite(json.loads(weights.with_suffix(".json").read_text())["training"]["runs"][0]["val_loss"])


def test_freeze_backbone_trains_the_head_only(tiny_csv, tmp_path):
    start = fit(config_from_dict(tiny_config(tiny_csv, tmp_path / "a", trainer={"max_epochs": 1})))
    raw = tiny_config(tiny_csv, tmp_path / "b", task="regression", name="test.probe", data={"target": "age"},
                      model={"weights": str(start), "freeze_backbone": True}, trainer={"max_epochs": 2})
    probe = models.create(str(fit(config_from_dict(raw))))
    before = models.create(str(start))
    changed = {name for name, value in probe.state_dict().items()
               if not name.startswith("classifier.") and not torch.equal(value, before.state_dict()[name])}
    assert changed == set()  # every backbone tensor (BatchNorm statistics included) is as it was
    assert probe.classifier.weight.shape == (1, 16)  # the new head is all that trained
    with pytest.raises(Exception, match="freeze_backbone"):
        config_from_dict({**raw, "model": {"architecture": raw["model"]["architecture"], "freeze_backbone": True}})
