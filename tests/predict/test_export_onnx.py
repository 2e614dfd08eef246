"""ONNX export: one verified file with a dynamic batch axis and the model card inside, or nothing."""

import json
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import onnxruntime as ort

from cxrkit.cli.main import app
from cxrkit.errors import MissingDependency
from cxrkit.models import create
from cxrkit.models.store import sha256_file
from cxrkit.predict import onnx_export as export_module
from cxrkit.predict.inputs import readable_inputs
from cxrkit.predict.onnx_export import ExportMismatch, export_onnx, probabilities

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tiny_model_file, example_images, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return export_onnx(str(tiny_model_file), path, example_images), path


@pytest.mark.slow
def test_one_file_with_the_card_inside(exported, tiny_model_file):
    result, path = exported
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.onnx"]  # no .onnx.data, no leftovers
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    card = create(str(tiny_model_file)).card
    assert json.loads(meta["cxrkit.card"]) == card.to_dict()
    assert json.loads(meta["labels"]) == card.labels and json.loads(meta["thresholds"]) == card.thresholds
    contract = json.loads(meta["input"])
    assert contract["shape"] == ["batch", 1, 64, 64] and contract["normalization"] == card.normalization
    assert json.loads(meta["output"])["activation"] == "sigmoid"
    assert meta["source_sha256"] == sha256_file(tiny_model_file) == card.sha256
    assert float(meta["verify_max_abs_diff"]) == pytest.approx(result.max_abs_diff, rel=1e-3)
    assert int(meta["verify_images"]) == result.images == 6 and result.max_abs_diff <= 1e-4


@pytest.mark.parametrize("batch", [1, 5])
def test_dynamic_batch_matches_pytorch_on_real_films(exported, tiny_model_file, example_images, batch):
    _, path = exported
    inputs = readable_inputs(example_images[:batch], create(str(tiny_model_file)).card)
    got = ort.InferenceSession(str(path)).run(["logits"], {"image": inputs})[0]
    with torch.inference_mode():
        expected = create(str(tiny_model_file)).eval()(torch.from_numpy(inputs)).numpy()
    assert got.shape == (batch, 18)
    assert np.abs(probabilities(got, "multilabel") - probabilities(expected, "multilabel")).max() < 1e-5


@pytest.mark.slow
def test_a_graph_that_disagrees_is_refused_and_not_written(tiny_model_file, example_images, tmp_path, monkeypatch):
    real = export_module.onnx_bytes

    def drifted(module, size):  # the graph of a slightly different network than the one verified against
        broken = create(str(tiny_model_file)).eval()
        with torch.no_grad():
            broken.classifier.bias.add_(0.01)
        return real(broken, size)

    monkeypatch.setattr(export_module, "onnx_bytes", drifted)
    target = tmp_path / "drifted.onnx"
    with pytest.raises(ExportMismatch, match="nothing was written"):
        export_onnx(str(tiny_model_file), target, example_images)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_bundled_model_exports_within_tolerance(example_images, tmp_path):
    films = [*example_images, example_images[0].parent / "siim_chest_pa.dcm"]
    result = export_onnx("densenet121.nih-demo", tmp_path / "demo.onnx", films)
    assert result.images == 7 and result.max_abs_diff < 1e-4
    meta = ort.InferenceSession(str(result.path)).get_modelmeta().custom_metadata_map
    assert meta["source_sha256"] == create("densenet121.nih-demo").card.sha256


@pytest.mark.slow
def test_cli_export(tiny_model_file, example_images, tmp_path):
    target = tmp_path / "m.onnx"
    args = ["export", str(tiny_model_file), "-o", str(target), "--verify-on", str(example_images[0].parent)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "max |Δprobability| vs PyTorch" in done.output and target.is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    refused = runner.invoke(app, [*args, "--overwrite", "--tolerance", "0"])
    # a tolerance of 0 is only met by bit-identical float arithmetic, which ONNX Runtime's kernels do not give
    assert refused.exit_code == 1 and "nothing was written" in refused.output
    assert runner.invoke(app, [*args, "--format", "tflite"]).exit_code == 1


def test_missing_onnx_says_which_extra(tiny_model_file, example_images, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependency, match=r"pip install cxrkit\[onnx\]"):
        export_onnx(str(tiny_model_file), tmp_path / "m.onnx", example_images)
