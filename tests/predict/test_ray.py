"""Prediction on a local Ray cluster: the same file as one process writes, workers killed mid-run, resume.

The cluster is started here (2 CPUs, loopback, no dashboard, its files under a short
temporary folder: Unix socket paths must stay under ~100 characters) and shut down after.
Skips when Ray Data is not installed.
"""

import csv
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.errors import CxrkitError
from cxrkit.predict import OutputSpec, Predictor, run_files
from cxrkit.predict.ray_run import RayEngine, predict_files_ray

from ..conftest import SCORE_TOL


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV, or the keys and rows of a JSON Lines file."""
    with open(path, newline="") as handle:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in handle]
            return list(rows[0]), rows
        reader = csv.reader(handle)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


def _value(cell) -> float | None:
    return None if cell in ("", None) else float(cell)


def _assert_same_output(got: Path, want: Path) -> None:
    """Same columns, same files in the same order, same status and error, scores within ``SCORE_TOL``.

    Batches hold other films than in one process (Ray cuts them by rows, error rows
    included), which moves fp32 scores by ~1e-7, and a CSV cell keeps 6 significant digits.
    """
    header, rows = _rows(got)
    want_header, want_rows = _rows(want)
    assert header == want_header
    assert [r["file"] for r in rows] == [r["file"] for r in want_rows]
    for row, ref in zip(rows, want_rows, strict=True):
        assert (row["status"], row["error"]) == (ref["status"], ref["error"]), row["file"]
        for column in header[3:]:
            value, expected = _value(row[column]), _value(ref[column])
            if expected is None:
                assert value is None, (row["file"], column)
            else:
                assert math.isclose(value, expected, rel_tol=0, abs_tol=SCORE_TOL), (row["file"], column, value, expected)


def test_a_missing_ray_is_a_clear_error(monkeypatch, tmp_path, tiny_model_file, example_images):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(CxrkitError, match=r"pip install 'cxrkit\[ray\]'"):
        list(predict_files_ray(example_images[:1], Predictor(str(tiny_model_file), precision="fp32")))


ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def cluster():
    """A private 2-CPU Ray on loopback for this module's tests."""
    root = tempfile.mkdtemp(prefix="cxr-ray-")  # short: the raylet's socket paths live under it
    stats = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # nothing leaves the machine
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=root, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
        if stats is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = stats


@pytest.fixture(scope="module")
def films(tmp_path_factory, example_images, shared_data_or_none) -> Path:
    """40+ files: the example films, the example DICOM, real NIH films when present (else
    renamed copies of the examples), and five broken files among them."""
    folder = tmp_path_factory.mktemp("films")
    for image in example_images:
        shutil.copy(image, folder / image.name)
    shutil.copy(example_images[0].parent / "siim_chest_pa.dcm", folder / "siim_chest_pa.dcm")
    nih = shared_data_or_none / "nih" / "images" if shared_data_or_none else None
    real = sorted(nih.glob("*.png"))[:34] if nih and nih.is_dir() else []
    for i in range(34):
        source = real[i] if real else example_images[i % len(example_images)]
        shutil.copy(source, folder / (source.name if real else f"copy_{i:02d}.png"))
    data = example_images[0].read_bytes()
    (folder / "0_empty.png").write_bytes(b"")
    (folder / "00001036_000_truncated.png").write_bytes(data[: len(data) // 3])
    (folder / "5_notes.dcm").write_text("this is not a DICOM file\n")
    (folder / "zz_noise.png").write_bytes(np.random.default_rng(0).bytes(5000))
    (folder / "m_bad_header.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    return folder


@pytest.fixture(scope="module")
def shared_data_or_none() -> Path | None:
    """../shared/data when present: the films are then real NIH ones, else copies of the examples."""
    root = Path(os.environ.get("CXRKIT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    return root if root.is_dir() else None


@pytest.fixture(scope="module")
def reference(films, tiny_model_file, tmp_path_factory) -> Path:
    """The single-process output, fp32, as JSON Lines (every digit) and as CSV."""
    folder = tmp_path_factory.mktemp("ref")
    for fmt in ("jsonl", "csv"):
        summary = run_files([films], Predictor(str(tiny_model_file), precision="fp32"),
                            OutputSpec(folder / f"ref.{fmt}", fmt=fmt), batch_size=4)
        assert summary.failed == 5 and summary.ok >= 35
    return folder / "ref.jsonl"


def test_same_output_as_one_process(cluster, films, reference, tiny_model_file, tmp_path):
    out = tmp_path / "ray.jsonl"
    predictor = Predictor(str(tiny_model_file), precision="fp32")
    summary = run_files([films], predictor, OutputSpec(out, fmt="jsonl"), batch_size=4, engine=RayEngine())
    _assert_same_output(out, reference)
    assert (summary.ok, summary.failed) == (len(_rows(reference)[1]) - 5, 5)


class DiesOnce:
    """A runner whose process is killed (SIGKILL) once while preparing ``victim`` and once in
    its third batch, each recorded by a marker file so the retry finds the work done; it also
    notes which processes prepared films and which ran the model."""

    def __init__(self, inner: Predictor, markers: Path, victim: str):
        self.inner, self.markers, self.victim = inner, markers, victim
        self.columns, self.film = inner.columns, inner.film
        self.batches = 0

    def _die_once(self, name: str) -> None:
        marker = self.markers / name
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), 9)

    def _note(self, name: str) -> None:
        with open(self.markers / name, "a") as handle:
            handle.write(f"{os.getpid()}\n")

    def prepare(self, image):
        self._note("prepared-in")
        if Path(image.meta["source"]).name == self.victim:
            self._die_once("read")
        return self.inner.prepare(image)

    def predict_batch(self, inputs):
        self._note("scored-in")
        self.batches += 1
        if self.batches == 3:
            self._die_once("model")
        return self.inner.predict_batch(inputs)


def test_killed_workers_are_retried_without_lost_or_duplicated_rows(cluster, films, reference, tiny_model_file,
                                                                     tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import a test module
    markers = tmp_path / "markers"
    markers.mkdir()
    runner = DiesOnce(Predictor(str(tiny_model_file), precision="fp32"), markers, victim="00006338_000.png")
    out = tmp_path / "ray.jsonl"
    run_files([films], runner, OutputSpec(out, fmt="jsonl"), batch_size=4, engine=RayEngine())
    assert (markers / "read").exists() and (markers / "model").exists()  # both kills happened
    assert os.getpid() not in {int((markers / m).read_text()) for m in ("read", "model")}  # Ray workers died
    prepared_in, scored_in = (set((markers / m).read_text().split()) for m in ("prepared-in", "scored-in"))
    assert len(scored_in) == 2  # the model actor, and the one that replaced it
    assert not prepared_in & scored_in  # read tasks and model actors are separate processes
    _assert_same_output(out, reference)
    names = [r["file"] for r in _rows(out)[1]]
    assert len(names) == len(set(names))


def test_resume_sends_only_the_missing_files(cluster, films, reference, tiny_model_file, tmp_path):
    out = tmp_path / "ray.csv"
    reference = reference.with_suffix(".csv")
    lines = reference.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:18]) + lines[18][:25])  # 17 rows, then a row cut short by a kill
    sent: list[str] = []
    engine = RayEngine()

    def spy(files, runner, **kwargs):
        rows = engine(files, runner, **kwargs)
        for row in rows:
            sent.append(row["file"])
            yield row

    summary = run_files([films], Predictor(str(tiny_model_file), precision="fp32"), OutputSpec(out, resume=True),
                        batch_size=4, engine=spy)
    assert summary.skipped == 17
    assert sent == [r["file"] for r in _rows(reference)[1][17:]]
    _assert_same_output(out, reference)


def test_cli_predict_on_ray(cluster, films, reference, tiny_model_file, tmp_path):
    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(app, ["predict", str(films), "--model", str(tiny_model_file), "-o", str(out),
                                      "--batch-size", "4", "--precision", "fp32", "--ray", "local"])
    assert result.exit_code == 3, result.output  # some files failed: their rows say why
    _assert_same_output(out, reference.with_suffix(".csv"))
