"""`cxr evaluate --model`: predicting a dataset split and scoring it equals predict-then-evaluate."""

import csv
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.labels import NIH_PATHOLOGIES
from cxrkit.models import ModelCard, create, save_weights

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LABELS = str(EXAMPLES / "labels.csv")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, fit_batchnorm):
    torch.manual_seed(0)
    model = create("densenet121", labels=list(NIH_PATHOLOGIES))
    fit_batchnorm(model, sorted(EXAMPLES.glob("*.png")), size=64)
    card = ModelCard(name="densenet121.eval-tiny", architecture="densenet121", labels=list(NIH_PATHOLOGIES),
                     input_size=64, description="random weights for tests", provenance={"source": "test"})
    path = tmp_path_factory.mktemp("m") / "tiny.safetensors"
    save_weights(model, card, path)
    return path


def _metrics(folder):
    with open(folder / "metrics.csv", newline="") as handle:
        return {row["label"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_model_on_dataset_equals_predict_then_evaluate(tiny_model, tmp_path):
    """examples/labels.csv is a real NIH label file for the committed example images."""
    from cxrkit.cli.main import app as cli

    direct = tmp_path / "direct"
    result = runner.invoke(cli, ["evaluate", "model", str(tiny_model), "--dataset", "nih", "--labels", LABELS,
                                 "--images", str(EXAMPLES), "--split", "all", "--output", str(direct), "--bootstrap", "50", "--no-plots"])
    assert result.exit_code == 0, result.output
    preds = tmp_path / "p.csv"
    assert runner.invoke(cli, ["predict", str(EXAMPLES), "--model", str(tiny_model), "-o", str(preds), "--raw",
                                 "--precision", "fp32"]).exit_code == 0
    twostep = tmp_path / "twostep"
    result = runner.invoke(cli, ["evaluate", "predictions", str(preds), "--dataset", "nih", "--labels", LABELS,
                                 "--output", str(twostep), "--bootstrap", "50", "--no-plots"])
    assert result.exit_code == 0, result.output
    a, b = _metrics(direct), _metrics(twostep)
    assert a["Pneumothorax"]["n_pos"] == "1" and a["Pneumothorax"]["n_neg"] == "5"
    for label in ("Pneumothorax", "Cardiomegaly", "Effusion", "Mass", "Edema"):
        assert float(a[label]["auc"]) == pytest.approx(float(b[label]["auc"]), abs=1e-9)


def test_model_needs_dataset_and_images(tiny_model, tmp_path):
    result = runner.invoke(app, ["evaluate", "model", str(tiny_model), "--labels", LABELS, "--output", str(tmp_path)])
    assert result.exit_code == 1 and "--images" in result.output
    result = runner.invoke(app, ["evaluate", "model", str(tiny_model), "--predictions", "x.csv", "--labels", LABELS,
                                 "--output", str(tmp_path)])
    assert result.exit_code == 2 and "--predictions" in result.output  # a model is not a predictions file
