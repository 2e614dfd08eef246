"""The batch engine with a runner of its own: order, error rows, batch failures, resume, progress.

The runner here needs no model (a film's mean brightness), so every expected number is
computed independently from the decoded file, and slow reads are arranged so that threads
finish out of order.
"""

import csv
import json
import math
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrkit.errors import CxrkitError
from cxrkit.io import read_image
from cxrkit.predict import (
    FileTask,
    OutputSpec,
    Runner,
    RunSummary,
    map_files,
    output_columns,
    predict_files,
    run_files,
)


def _mean(image) -> float:
    thumb = cv2.resize(image.pixels.astype(np.float32) / np.float32(image.maxval), (16, 16),
                       interpolation=cv2.INTER_AREA)
    return float(thumb.mean())


class Brightness:
    """Mean brightness of a 16 px thumbnail and its double; reads of ``slow`` files take longer,
    and a batch holding a film brighter than ``fail_above`` fails as a whole."""

    columns = ["brightness", "double"]
    film = None  # no film steps

    def __init__(self, slow: tuple[str, ...] = (), fail_above: float = math.inf):
        self.slow, self.fail_above = slow, fail_above
        self.batches: list[int] = []

    def prepare(self, image):
        if Path(image.meta["source"]).name in self.slow:
            time.sleep(0.3)
        return np.full((1, 2, 2), _mean(image), np.float32), {"height": image.pixels.shape[0]}

    def predict_batch(self, inputs):
        self.batches.append(len(inputs))
        means = inputs.reshape(len(inputs), -1)[:, 0].astype(np.float64)
        if (means > self.fail_above).any():
            raise MemoryError("pretend the batch did not fit")
        return np.stack([means, 2 * means], axis=1)


@pytest.fixture()
def films(tmp_path, example_images) -> list[Path]:
    """Six real films with two broken files between them."""
    folder = tmp_path / "films"
    folder.mkdir()
    out = []
    for i, image in enumerate(example_images):
        out.append(folder / f"{i:02d}_{image.name}")
        shutil.copy(image, out[-1])
        if i in (1, 3):
            broken = folder / f"{i:02d}_zbroken.png"
            broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
            out.append(broken)
    return out


def test_custom_runner_rows_in_input_order_with_error_rows(films):
    runner = Brightness(slow=(films[0].name, films[2].name))
    assert isinstance(runner, Runner)
    summary = RunSummary()
    rows = list(predict_files(films, runner, batch_size=3, workers=3, summary=summary))
    assert [r["file"] for r in rows] == [str(f) for f in films]  # the slow first file did not reorder anything
    for row, path in zip(rows, films, strict=True):
        if "zbroken" in path.name:
            assert row["status"] == "error" and row["error"] and math.isnan(row["brightness"])
            assert "height" not in row
            continue
        image = read_image(path)
        assert row["status"] == "ok" and row["error"] == "" and row["height"] == image.pixels.shape[0]
        assert row["brightness"] == pytest.approx(_mean(image), abs=1e-6)
        assert row["double"] == pytest.approx(2 * _mean(image), abs=1e-6)
    assert (summary.ok, summary.failed, summary.skipped) == (len(films) - 2, 2, 0)
    assert [name for name, _ in summary.errors] == [str(f) for f in films if "zbroken" in f.name]
    assert all(size <= 3 for size in runner.batches) and sum(runner.batches) == len(films) - 2


def test_a_failing_batch_costs_its_own_rows_only(films):
    good = [f for f in films if "zbroken" not in f.name]
    means = [_mean(read_image(f)) for f in good]
    brightest = int(np.argmax(means))
    runner = Brightness(fail_above=means[brightest] - 1e-6)
    rows = list(predict_files(good, runner, batch_size=2))
    failed_batch = {brightest - brightest % 2, brightest - brightest % 2 + 1} & set(range(len(good)))
    for i, row in enumerate(rows):
        if i in failed_batch:
            assert row["status"] == "error" and row["error"].startswith("model failed on this batch")
            assert "pretend the batch did not fit" in row["error"]
        else:
            assert row["status"] == "ok" and row["brightness"] == pytest.approx(means[i], abs=1e-6)


class Recorder:
    def __init__(self):
        self.started: tuple[int, int] | None = None
        self.advanced = 0

    def start(self, total: int, done: int) -> None:
        self.started = (total, done)

    def advance(self, rows: int) -> None:
        self.advanced += rows


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_files_scans_writes_and_resumes_without_redoing_anything(films, tmp_path):
    folder = films[0].parent
    out = tmp_path / "bright.csv"
    first = Recorder()
    summary = run_files(films[:3], Brightness(), OutputSpec(out), batch_size=2, progress=first)
    assert first.started == (3, 0) and first.advanced == 3 and summary.ok + summary.failed == 3
    with pytest.raises(CxrkitError, match="already exists"):
        run_files([folder], Brightness(), OutputSpec(out))
    before = _csv(out)
    runner, second = Brightness(), Recorder()
    summary = run_files([folder], runner, OutputSpec(out, resume=True), batch_size=2, progress=second)
    scanned = sorted(folder.iterdir())  # a folder is walked in sorted order
    assert second.started == (len(scanned), 3) and second.advanced == len(scanned) - 3
    assert summary.skipped == 3 and summary.ok + summary.failed == len(scanned) - 3
    after = _csv(out)
    assert after[:3] == before and sorted(r["file"] for r in after) == sorted(map(str, scanned))
    assert list(after[0]) == ["file", "status", "error", "brightness", "double"]
    by_file = {r["file"]: r for r in after}
    for path in scanned:
        if "zbroken" not in path.name:
            assert float(by_file[str(path)]["brightness"]) == pytest.approx(_mean(read_image(path)), abs=1e-5)
    assert sum(runner.batches) == sum(1 for p in scanned[3:] if "zbroken" not in p.name)  # nothing redone


def test_run_files_jsonl_with_completed_rows_and_missing_paths(films, tmp_path):
    out = tmp_path / "rows.jsonl"

    def complete(rows):
        for row in rows:
            row["note"] = row["status"]

    columns = output_columns(Brightness()) + ["note"]
    run_files(films[1:3], Brightness(), OutputSpec(out, fmt="jsonl"), columns=columns, complete=complete)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["note"] for r in records] == [r["status"] for r in records] == ["ok", "error"]
    assert records[1]["brightness"] is None  # NaN is written as null
    with pytest.raises(CxrkitError, match="no such file or folder"):
        run_files([tmp_path / "nowhere"], Brightness(), OutputSpec(tmp_path / "x.csv"))


class Sizes:
    """A per-file task: the decoded size of each film (what a converter or a checker looks like)."""

    columns = ["height", "width"]

    def __call__(self, path: Path) -> dict:
        pixels = read_image(path).pixels
        return {"height": pixels.shape[0], "width": pixels.shape[1]}


def test_per_file_tasks_share_the_engine(films, tmp_path):
    task = Sizes()
    assert isinstance(task, FileTask) and not isinstance(task, Runner)
    rows = list(map_files(films, task, workers=2, skip={str(films[0])}))
    assert [r["file"] for r in rows] == [str(f) for f in films[1:]]
    for row, path in zip(rows, films[1:], strict=True):
        if "zbroken" in path.name:
            assert row["status"] == "error" and "height" not in row
        else:
            assert (row["height"], row["width"]) == read_image(path).pixels.shape
    out = tmp_path / "sizes.csv"
    summary = run_files(films, task, OutputSpec(out), workers=2)
    assert (summary.ok, summary.failed) == (len(films) - 2, 2)
    assert [r["file"] for r in _csv(out)] == [str(f) for f in films]
