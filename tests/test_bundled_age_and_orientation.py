"""The bundled age and orientation models: their cards' validation numbers are reproduced on
the real NIH validation split (needs ../shared/data), and they run on the committed examples."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.models import create
from cxrkit.train import load_config, predict_logits, prepare_data

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _validation_data(config: str, shared_data: Path):
    cfg = load_config(REPO / "configs" / config)
    cfg.data.root = str(shared_data / "nih" / "images")
    cfg.data.label_file = str(shared_data / "nih" / "Data_Entry_2017_v2020.csv")
    cfg.data.cache = False  # decode only the validation films the test scores
    if cfg.data.metadata:
        cfg.data.metadata = [str(shared_data / "nih" / "sources.csv")]
    return prepare_data(cfg)


def test_default_card_per_source_auc_is_reproduced_on_its_validation_split(shared_data):
    """The number docs/models.md quotes (mean AUC on the less selected draw) is the card's, and holds."""
    import torch

    from cxrkit.evaluate import evaluate_predictions

    model = create("densenet121.nih-demo")
    data = _validation_data("nih-demo.yaml", shared_data)
    valid = data.valid_set
    probs = torch.sigmoid(predict_logits(model, valid)).numpy()
    starter = valid.dataset.frame["source"].to_numpy() == "reproduce-chexnet-starter"
    ids = [f"{i}" for i in range(len(valid))]
    import pandas as pd

    frame = lambda values: pd.DataFrame(values[starter], index=pd.Index(ids)[starter], columns=data.label_names)  # noqa: E731
    result = evaluate_predictions(frame(probs), frame(valid.targets.numpy()), n_bootstrap=0)
    mean = float(result.table.set_index("label").loc["mean", "auc"])
    card = model.card.metrics["validation"]["subgroups"]["source"]["reproduce-chexnet-starter"]
    assert card["images"] == int(starter.sum())
    assert mean == pytest.approx(card["auc_mean"], abs=2e-3)
    models_page = (REPO / "docs" / "models.md").read_text()
    assert f"{card['auc_mean']:.3f}" in models_page  # the models page quotes the card's number


def test_age_card_mae_is_reproduced_on_its_validation_split(shared_data):
    model = create("densenet121.nih-age")
    card = model.card
    data = _validation_data("age-nih.yaml", shared_data)
    valid = data.valid_set
    assert len(valid) == card.metrics["validation"]["n"]
    pred = predict_logits(model, valid).squeeze(1).numpy()
    target = valid.targets.numpy()
    numbers = card.metrics["validation"]
    assert numbers["mae"] == pytest.approx(float(np.abs(pred - target).mean()), abs=1e-3)
    assert numbers["mae_ci_low"] < numbers["mae"] < numbers["mae_ci_high"]
    assert set(valid.patients).isdisjoint(data.train_set.patients)


def test_orientation_card_accuracy_is_reproduced_on_its_validation_split(shared_data):
    model = create("resnet18.nih-orientation")
    data = _validation_data("orientation-nih.yaml", shared_data)
    valid = data.valid_set
    predicted = predict_logits(model, valid).argmax(1)
    accuracy = float((predicted == valid.targets).float().mean())
    assert accuracy == pytest.approx(model.card.metrics["validation"]["accuracy"], abs=1e-3)


@pytest.mark.slow
def test_bundled_age_model_on_the_examples(example_images, tmp_path):
    out = tmp_path / "ages.csv"
    labels = REPO / "examples" / "labels.csv"
    result = runner.invoke(app, ["age", str(REPO / "examples"), "--tta", "--metadata", str(labels),
                                 "--metadata-id", "Image Index", "--metadata-age", "Patient Age", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(example_images) + 1 and all(r["status"] == "ok" for r in rows)
    for row in rows:
        assert 0 < float(row["cxr_age"]) < 110 and float(row["cxr_age_sd"]) >= 0
        assert row["chronological_age"] and row["age_gap"]
    card = json.loads((REPO / "src/cxrkit/models/weights/densenet121.nih-age.json").read_text())
    assert card["task"] == "regression" and card["labels"] == ["age"]


def test_age_model_validates_on_patients_its_starting_weights_never_trained_on(shared_data):
    """The age model starts from densenet121.nih-demo: both recipes must split the NIH sample the
    same way, or the age validation films could have been seen in the backbone's training."""
    from cxrkit.train.data import build_dataset, split_train_valid

    parts = []
    for config in ("age-nih.yaml", "nih-demo.yaml"):
        cfg = load_config(REPO / "configs" / config)
        cfg.data.root = str(shared_data / "nih" / "images")
        cfg.data.label_file = str(shared_data / "nih" / "Data_Entry_2017_v2020.csv")
        cfg.data.metadata = [str(shared_data / "nih" / "sources.csv")]
        parts.append(split_train_valid(build_dataset(cfg.data, 224), cfg.data))
    age, demo = parts
    assert set(age["valid"].frame["path"]) == set(demo["valid"].frame["path"])
    assert set(age["valid"].patients).isdisjoint(demo["train"].patients)
