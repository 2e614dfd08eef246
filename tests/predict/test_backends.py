"""The Predictor as a runner, and the backend seam under it (what another runtime plugs into)."""

import numpy as np
import pytest
import torch

from cxrkit.errors import CxrkitError
from cxrkit.io import read_image
from cxrkit.models import create
from cxrkit.models.precision import resolve_precision
from cxrkit.predict import BACKENDS, Predictor, Runner, make_backend, predict_files

PLUGIN = '''
import torch

calls = []


class ZeroBackend:
    """Logits of zero for every output: a probability of exactly 0.5 after the sigmoid."""

    name = "zeros"
    precisions = ("fp32",)

    def __init__(self, model, device, precision):
        calls.append(precision)
        self.device, self.precision = device, precision
        self.outputs = len(model.card.labels)

    def __call__(self, x):
        return torch.zeros(x.shape[0], self.outputs)
'''


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    (tmp_path / "zero_backend.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(BACKENDS, "zeros", "zero_backend:ZeroBackend")
    import zero_backend

    zero_backend.calls.clear()
    return zero_backend


@pytest.mark.slow
def test_predictor_is_a_runner_and_the_engine_keeps_its_numbers(example_images, tiny_model_file):
    predictor = Predictor(str(tiny_model_file), precision="fp32")
    assert isinstance(predictor, Runner)
    rows = list(predict_files(example_images, predictor, batch_size=4, workers=2))
    direct = predictor.predict_batch(np.stack([predictor.prepare(read_image(p))[0] for p in example_images]))
    got = np.array([[row[c] for c in predictor.columns] for row in rows])
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-6)
    assert got.shape == (len(example_images), len(predictor.columns))


def test_logits_are_the_model_forward_pass_in_fp32(example_images, tiny_model_file):
    predictor = Predictor(str(tiny_model_file), precision="fp32", calibrate=False)
    x = np.stack([predictor.prepare(read_image(p))[0] for p in example_images[:3]])
    reference = create(str(tiny_model_file)).eval()
    with torch.no_grad():
        expected = reference(torch.from_numpy(x))
    logits = predictor.logits(x)
    assert logits.dtype == torch.float32 and logits.shape == expected.shape
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    probs = predictor.predict_batch(x)
    np.testing.assert_allclose(probs[:, :14], torch.sigmoid(expected).numpy()[:, :14], atol=1e-5)


def test_auto_precision_is_resolved_for_the_machine(tiny_model_file):
    predictor = Predictor(str(tiny_model_file))
    assert predictor.precision == resolve_precision("auto", "cpu") and predictor.precision in ("fp32", "bf16")
    assert predictor.backend.name == "torch" and predictor.backend.precision == predictor.precision


def test_a_registered_backend_computes_the_logits(plugin, example_images, tiny_model_file):
    predictor = Predictor(str(tiny_model_file), calibrate=False, backend="zeros")
    assert plugin.calls == ["fp32"]  # auto falls back to the precisions the backend declares
    x = predictor.prepare(read_image(example_images[0]))[0][None]
    scores = predictor.predict_batch(x)[0]
    assert np.all(scores[:14] == 0.5) and np.isnan(scores[14:]).all()
    assert predictor.precision == "fp32"
    make_backend("zeros", predictor.model, "cpu", "bf16")  # an explicit choice reaches the backend to refuse
    assert plugin.calls[-1] == "bf16"


def test_backend_and_device_errors_name_no_command_line_flag(tiny_model_file):
    with pytest.raises(CxrkitError, match="unknown backend 'tensorrt'") as error:
        Predictor(str(tiny_model_file), backend="tensorrt")
    assert "torch" in str(error.value)
    if not torch.cuda.is_available():
        with pytest.raises(CxrkitError, match="no CUDA GPU") as error:
            Predictor(str(tiny_model_file), device="cuda")
        assert "--" not in str(error.value)
