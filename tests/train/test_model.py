"""The model a training run starts from comes from the one factory, card and options included."""

from __future__ import annotations

import torch

from cxrkit.models import CxrModel, create, save_weights
from cxrkit.train import build_model, config_from_dict

from .conftest import TINY, tiny_config


def test_a_fresh_training_model_is_a_cxr_model_with_the_run_card(tiny_csv, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_csv, tmp_path, task="regression", data={"target": "age"}))
    model = build_model(cfg, ["age"], head_bias=61.5)
    assert isinstance(model, CxrModel) and model.training
    card = model.card
    assert (card.name, card.architecture, card.labels, card.task, card.input_size) == (
        "test.tiny", TINY, ["age"], "regression", 32)
    assert card.thresholds == {} and card.metrics == {}, "a model in training carries no measured numbers"
    assert card.provenance["started_from"].startswith("random initialisation")
    assert torch.all(model.get_classifier().bias == 61.5)


def test_fine_tuning_keeps_the_backbone_and_gets_its_drop_rate_and_card(tiny_csv, tmp_path):
    torch.manual_seed(0)
    start = create("resnet18", labels=["x", "y"])
    path = save_weights(start, start.card, tmp_path / "start.safetensors")
    raw = tiny_config(tiny_csv, tmp_path, model={"architecture": "resnet18", "input_size": 32,
                                                 "weights": str(path), "drop_rate": 0.3})
    model = build_model(config_from_dict(raw), ["A", "B", "C"])
    assert model.card.labels == ["A", "B", "C"] and model.card.task == "multilabel"
    assert model.card.provenance["started_from"] == str(path)
    assert model.get_classifier().out_features == 3
    assert model.drop_rate == 0.3  # before, the config's dropout was dropped when starting from weights
    kept = {k: v for k, v in start.state_dict().items() if not k.startswith("model.fc.")}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in kept.items())
