"""``cxr bench``: every backend x precision x batch size timed on real films, the impossible ones explained."""

import json

import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.predict.bench import CPU_FLAGS, machine, run_bench

pytest.importorskip("onnxruntime")

runner = CliRunner()


@pytest.mark.slow
def test_run_bench_times_each_configuration(tiny_model_file, example_images):
    report = run_bench(example_images[:3], str(tiny_model_file), backends=("torch", "onnx"),
                       precisions=("fp32", "fp16"), batch_sizes=(1, 2))
    assert [(r.backend, r.precision, r.batch_size) for r in report.results] == [
        ("torch", "fp32", 1), ("torch", "fp32", 2), ("torch", "fp16", 1), ("torch", "fp16", 2),
        ("onnx", "fp32", 1), ("onnx", "fp32", 2), ("onnx", "fp16", 1), ("onnx", "fp16", 2)]
    ran = [r for r in report.results if r.skipped is None]
    assert [r.precision for r in ran] == ["fp32"] * 4  # fp16 needs CUDA; ONNX Runtime runs fp32 only
    assert all("fp16" in r.skipped or "fp32 only" in r.skipped for r in report.results if r.skipped)
    for r in ran:
        assert r.end_to_end > 0 and r.model_only > r.bound > 0
        assert r.bound == pytest.approx(1 / (1 / report.decode_only + 1 / r.model_only))
    assert report.fastest.end_to_end == max(r.end_to_end for r in ran)


def test_machine_lists_only_known_flags():
    described = machine()
    assert set(described["cpu_flags"]) <= set(CPU_FLAGS) and described["cores"] >= 1 and described["cpu"]


def test_cli_bench_json(tiny_model_file, example_images):
    done = runner.invoke(app, ["bench", str(example_images[0].parent), "-m", str(tiny_model_file), "-n", "2",
                               "--precisions", "fp32", "--batch-sizes", "2", "--format", "json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["images"] == 2 and len(data["results"]) == 2
    assert data["fastest"]["backend"] in ("torch", "onnx")
    assert runner.invoke(app, ["bench", str(example_images[0]), "--batch-sizes", "x"]).exit_code == 1
