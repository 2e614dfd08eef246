"""The ONNX Runtime backend: the same rows as PyTorch fp32, through the same reading, calibration and errors."""

import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cxrkit.cli.main import app
from cxrkit.errors import CxrkitError, MissingDependency
from cxrkit.io import read_image
from cxrkit.models import create
from cxrkit.predict import Predictor, make_backend
from cxrkit.predict.onnx_backend import load_onnx
from cxrkit.predict.onnx_export import export_onnx, session_options

runner = CliRunner()


@pytest.fixture()
def films(tmp_path, example_images):
    """The example films (PNG and DICOM) and a truncated PNG that must become an error row."""
    folder = tmp_path / "films"
    folder.mkdir()
    for image in [*example_images, example_images[0].parent / "siim_chest_pa.dcm"]:
        shutil.copy(image, folder / image.name)
    (folder / "broken.png").write_bytes(example_images[0].read_bytes()[:300])
    return folder


def _assert_same_csv(a, b, tolerance):
    """Same files, order, status and error text; every score within ``tolerance``, NaN where NaN."""
    x, y = pd.read_csv(a), pd.read_csv(b)  # an empty cell reads as NaN
    keys = ["file", "status", "error"]
    assert list(x.columns) == list(y.columns) and x[keys].fillna("").equals(y[keys].fillna(""))
    scores_x = x.drop(columns=keys).astype(float).to_numpy()
    scores_y = y.drop(columns=keys).astype(float).to_numpy()
    assert np.array_equal(np.isnan(scores_x), np.isnan(scores_y))
    assert np.nanmax(np.abs(scores_x - scores_y)) <= tolerance
    return x.to_dict("records")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["densenet121.nih-demo", "tiny"])
def test_cli_csv_matches_torch_fp32(films, tmp_path, tiny_model_file, model, monkeypatch):
    from cxrkit.predict import onnx_backend

    batches = []
    forward = onnx_backend.OnnxBackend.__call__
    monkeypatch.setattr(onnx_backend.OnnxBackend, "__call__", lambda self, x: batches.append(len(x)) or forward(self, x))
    model = str(tiny_model_file) if model == "tiny" else model
    common = ["predict", str(films), "-m", model, "--precision", "fp32", "--batch-size", "3"]
    torch_csv, onnx_csv = tmp_path / "torch.csv", tmp_path / "onnx.csv"
    done = runner.invoke(app, [*common, "--backend", "torch", "-o", str(torch_csv)])
    assert done.exit_code == 3, done.output  # the broken file
    done = runner.invoke(app, [*common, "--backend", "onnx", "-o", str(onnx_csv)])
    assert done.exit_code == 3, done.output
    assert sum(batches) == 7  # ONNX Runtime scored every readable film
    rows = _assert_same_csv(torch_csv, onnx_csv, 1e-5)
    assert [r["status"] for r in rows].count("ok") == 7 and [r["status"] for r in rows].count("error") == 1


def test_resume_with_onnx_gives_the_uninterrupted_file(films, tmp_path, tiny_model_file):
    common = ["predict", str(films), "-m", str(tiny_model_file), "--backend", "onnx"]
    whole, part = tmp_path / "whole.csv", tmp_path / "part.csv"
    assert runner.invoke(app, [*common, "-o", str(whole)]).exit_code == 3
    lines = whole.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:4]))  # header + 3 rows, as a killed run leaves it
    resumed = runner.invoke(app, [*common, "-o", str(part), "--resume"])
    assert resumed.exit_code == 3 and "3 already done" in resumed.output  # the rows kept were not redone
    assert part.read_text() == whole.read_text()


@pytest.mark.slow
def test_exported_file_as_the_model(tiny_model_file, example_images, tmp_path):
    path = export_onnx(str(tiny_model_file), tmp_path / "tiny.onnx", example_images).path
    graph = load_onnx(path)
    assert graph.card.to_dict() == create(str(tiny_model_file)).card.to_dict()
    from_file = Predictor(graph, backend="onnx")
    reference = Predictor(str(tiny_model_file), precision="fp32")
    assert from_file.columns == reference.columns and from_file.calibrated
    images = [read_image(p) for p in example_images]
    batch = np.stack([reference.preprocess(i.pixels, i.maxval) for i in images])
    a, b = reference.predict_batch(batch), from_file.predict_batch(batch)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b)) < 1e-5


@pytest.mark.slow
def test_cli_takes_an_exported_file_as_the_model(films, tmp_path, tiny_model_file, example_images):
    """``cxr predict -m model.onnx`` runs the file on ONNX Runtime with the card inside it."""
    path = export_onnx(str(tiny_model_file), tmp_path / "tiny.onnx", example_images).path
    from_file, reference = tmp_path / "file.csv", tmp_path / "torch.csv"
    assert runner.invoke(app, ["predict", str(films), "-m", str(path), "-o", str(from_file)]).exit_code == 3
    assert runner.invoke(app, ["predict", str(films), "-m", str(tiny_model_file), "--precision", "fp32",
                               "--backend", "torch", "-o", str(reference)]).exit_code == 3
    _assert_same_csv(reference, from_file, 1e-5)
    with pytest.raises(CxrkitError, match="ONNX file"):
        Predictor(str(path), backend="torch")


def test_precisions_and_threads(tiny_model_file):
    model = create(str(tiny_model_file)).eval()
    assert make_backend("onnx", model, "cpu", "auto").precision == "fp32"  # even where bf16 is native
    with pytest.raises(CxrkitError, match="fp32 only"):
        make_backend("onnx", model, "cpu", "bf16")
    assert session_options().intra_op_num_threads == torch.get_num_threads()
    assert session_options(3).intra_op_num_threads == 3


def test_missing_onnxruntime_says_which_extra(tiny_model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependency, match=r"pip install cxrkit\[onnx\]"):
        Predictor(str(tiny_model_file), backend="onnx")


# --- backend "auto" ------------------------------------------------------------------------------

def _flags(monkeypatch, *flags):
    from cxrkit.models import precision

    monkeypatch.setattr(precision, "cpu_info", lambda: ("a CPU", frozenset(flags)))


def test_auto_rule_follows_the_cpu_and_the_installed_runtimes(monkeypatch):
    from cxrkit.predict import choose_backend

    _flags(monkeypatch, "avx2")  # an AMD EPYC without AVX-512: bf16 would be emulated
    assert choose_backend("cpu", "auto")[0] == "onnx" and choose_backend("cpu", "fp32")[0] == "onnx"
    assert choose_backend("cpu", "bf16")[0] == "torch"  # a reduced precision runs on PyTorch
    _flags(monkeypatch, "avx512f", "amx_bf16")  # native bf16: PyTorch bf16 is the fastest
    name, why = choose_backend("cpu", "auto")
    assert name == "torch" and "bf16" in why
    assert choose_backend("cpu", "fp32")[0] == "onnx"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    name, why = choose_backend("cpu", "fp32")
    assert name == "torch" and "cxrkit[onnx]" in why


@pytest.mark.slow
def test_auto_exports_once_checks_and_reuses_the_graph(monkeypatch, cxrkit_home, tiny_model_file, example_images):
    from cxrkit.predict import onnx_backend

    _flags(monkeypatch, "avx2")
    first = Predictor(str(tiny_model_file), backend="auto")
    cached = list((cxrkit_home / "onnx").glob("*.onnx"))
    assert first.backend.name == "onnx" and first.precision == "fp32" and len(cached) == 1

    def no_export(*args, **kwargs):
        raise AssertionError("the cached graph should have been used")

    export = onnx_backend.onnx_bytes
    monkeypatch.setattr(onnx_backend, "onnx_bytes", no_export)
    again = Predictor(str(tiny_model_file), backend="auto")
    reference = Predictor(str(tiny_model_file), precision="fp32", backend="torch")
    images = [read_image(p) for p in example_images]
    batch = np.stack([reference.preprocess(i.pixels, i.maxval) for i in images])
    a, b = reference.predict_batch(batch), again.predict_batch(batch)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b)) < 1e-5

    monkeypatch.setattr(onnx_backend, "onnx_bytes", export)
    changed = create(str(tiny_model_file))  # same card, weights changed in memory: never the old graph
    with torch.no_grad():
        next(changed.parameters()).mul_(1.01)
    Predictor(changed, backend="auto")
    assert len(list((cxrkit_home / "onnx").glob("*.onnx"))) == 2


@pytest.mark.slow
def test_auto_runs_torch_when_the_graph_fails_its_check(monkeypatch, cxrkit_home, tiny_model_file, caplog):
    from cxrkit.predict import onnx_backend

    _flags(monkeypatch, "avx2")
    monkeypatch.setattr(onnx_backend, "max_difference", lambda *args: 0.5)
    predictor = Predictor(str(tiny_model_file), backend="auto")
    assert predictor.backend.name == "torch" and predictor.precision == "fp32"
    assert "differs from PyTorch by 0.5" in caplog.text
    assert not list(cxrkit_home.rglob("*.onnx"))  # a graph that failed is never cached
    with pytest.raises(CxrkitError, match="differs from PyTorch"):
        Predictor(str(tiny_model_file), backend="onnx")  # asked for by name, it is an error


@pytest.mark.slow
def test_an_onnx_predictor_survives_pickling(tiny_model_file, example_images, cxrkit_home):
    """Ray ships the predictor to its tasks: the session is reopened from the graph on the other side."""
    import pickle

    predictor = Predictor(str(tiny_model_file), backend="onnx")
    copy = pickle.loads(pickle.dumps(predictor))
    images = [read_image(p) for p in example_images[:3]]
    batch = np.stack([predictor.preprocess(i.pixels, i.maxval) for i in images])
    a, b = predictor.predict_batch(batch), copy.predict_batch(batch)
    assert copy.backend.name == "onnx" and np.array_equal(np.isnan(a), np.isnan(b))
    assert np.nanmax(np.abs(a - b)) == 0.0
