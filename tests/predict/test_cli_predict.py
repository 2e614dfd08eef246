"""`cxr predict` end to end: real images, bad inputs as error rows, exit codes, formats, resume."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.labels import PATHOLOGIES

runner = CliRunner()
HEADER = ["file", "status", "error", *PATHOLOGIES]


def _rows(path):
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


@pytest.fixture()
def messy_folder(tmp_path, example_images):
    """Real radiographs, a DICOM without extension in a sub-folder, and the bad files users really have."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    for image in example_images[:3]:
        shutil.copy(image, root / image.name)
    dicom = example_images[0].parent / "siim_chest_pa.dcm"
    shutil.copy(dicom, root / "sub" / "deeper" / "IM0001")  # DICOM found by content
    (root / "empty.png").write_bytes(b"")
    data = example_images[0].read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 3])
    (root / "sub" / "notes.dcm").write_text("this is not a DICOM file\n")
    (root / "README.txt").write_text("ignored: not an image\n")
    (root / ".hidden.png").write_bytes(data)
    return root


def test_folder_with_bad_files_gives_one_row_each(messy_folder, tiny_model_file, tmp_path):
    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(messy_folder), "--model", str(tiny_model_file), "-o", str(out), "--batch-size", "2"])
    assert result.exit_code == 3, result.output
    header, rows = _rows(out)
    assert header == HEADER
    by_name = {Path(r["file"]).name: r for r in rows}
    assert set(by_name) == {"00001036_000.png", "00001968_000.png", "00003350_000.png", "IM0001",
                            "empty.png", "truncated.png", "notes.dcm"}
    for name in ("00001036_000.png", "00001968_000.png", "00003350_000.png", "IM0001"):
        row = by_name[name]
        assert row["status"] == "ok" and row["error"] == ""
        values = [float(row[label]) for label in PATHOLOGIES[:14]]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert all(row[label] == "" for label in PATHOLOGIES[14:])  # untrained: empty, not 0.5
    for name in ("empty.png", "truncated.png", "notes.dcm"):
        assert by_name[name]["status"] == "error" and by_name[name]["error"]
        assert all(by_name[name][label] == "" for label in PATHOLOGIES)
    assert "empty" in by_name["empty.png"]["error"].lower()


def test_all_ok_exits_zero_and_jsonl(example_images, tiny_model_file, tmp_path):
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", *map(str, example_images[:2]), "--model", str(tiny_model_file),
                                 "-o", str(out), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["file"]).name for r in records] == [p.name for p in example_images[:2]]
    assert records[0]["status"] == "ok" and records[0]["Lung Lesion"] is None
    assert 0 <= records[0]["Effusion"] <= 1


def test_explicit_non_image_file_gets_an_error_row(tmp_path, tiny_model_file):
    text = tmp_path / "report.txt"
    text.write_text("no image here")
    result = runner.invoke(app, ["predict", str(text), "--model", str(tiny_model_file), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 3
    _, rows = _rows(tmp_path / "o.csv")
    assert len(rows) == 1 and rows[0]["status"] == "error"


def test_refuses_to_overwrite_and_reports_missing_paths(example_images, tiny_model_file, tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("precious\n")
    result = runner.invoke(app, ["predict", str(example_images[0]), "--model", str(tiny_model_file), "-o", str(out)])
    assert result.exit_code == 1 and "--resume" in result.output
    assert out.read_text() == "precious\n"
    result = runner.invoke(app, ["predict", str(tmp_path / "nope"), "--model", str(tiny_model_file)])
    assert result.exit_code == 1 and "no such file" in result.output


@pytest.mark.subprocess
def test_resume_after_kill_loses_and_duplicates_nothing(example_images, tiny_model_file, tmp_path):
    """Kill a real `cxr predict` process mid-run, resume it, and check every file appears exactly once."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        shutil.copy(example_images[i % len(example_images)], folder / f"img_{i:03d}.png")
    out = tmp_path / "pred.csv"
    cmd = [sys.executable, "-m", "cxrkit.cli.main", "predict", str(folder), "--model", str(tiny_model_file),
           "-o", str(out), "--batch-size", "2", "--precision", "fp32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 7:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"predict finished before it could be killed: {proc.stderr.read().decode()[-500:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, before = _rows(out)
    assert 0 < len(before) < 40
    # simulate the worst case: the kill landed in the middle of a row
    with open(out, "a") as handle:
        handle.write(str(folder / "img_099.png") + ",ok,,0.12")
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} already done" in done.stderr
    _, after = _rows(out)
    names = [r["file"] for r in after]
    assert len(names) == 40 and len(set(names)) == 40
    assert after[: len(before)] == before  # finished rows untouched
    assert all(r["status"] == "ok" for r in after)
    # same file content -> same scores, whether predicted before or after the kill
    first = {Path(r["file"]).name: float(r["Effusion"]) for r in after}
    assert abs(first["img_000.png"] - first["img_006.png"]) < 1e-5


def test_batch_results_do_not_depend_on_batch_size(example_images, tiny_model_file, tmp_path):
    outs = []
    for bs in ("1", "4"):
        out = tmp_path / f"b{bs}.csv"
        result = runner.invoke(app, ["predict", *map(str, example_images), "--model", str(tiny_model_file),
                                     "-o", str(out), "--batch-size", bs, "--precision", "fp32"])
        assert result.exit_code == 0, result.output
        _, rows = _rows(out)
        outs.append(np.array([[float(r[label]) for label in PATHOLOGIES[:14]] for r in rows]))
    assert np.abs(outs[0] - outs[1]).max() < 1e-4
