"""`cxr predict --heatmaps` killed with SIGKILL while it writes maps, then resumed: nothing lost, nothing torn.

Why: a row is written only after its maps, and each map is written to a temporary file and
renamed into place, so whatever instant a job dies at, every row on disk names complete
PNGs, and ``--resume`` redraws exactly the maps of the rows that were not yet written. The
real process is killed at random points (a fixed seed), some of them the moment a map is
half-written, and the final CSV and maps are compared with an uninterrupted run's.
"""

from __future__ import annotations

import csv
import random
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from .conftest import ENV, N_IMAGES, assert_same_rows, cli, kill, start, wait_for_rows

pytestmark = pytest.mark.subprocess  # every test runs `cxr` in a child process


def _command(inputs: Path, model: Path, out: Path, maps: Path, *extra: str) -> list[str]:
    return cli("predict", str(inputs), "--model", str(model), "-o", str(out), "--batch-size", "2",
               "--heatmaps", str(maps), "--heatmap-method", "cam", *extra)


def _map_names(cell: str, maps: Path) -> list[str]:
    """A ``heatmaps`` cell as file names inside ``maps`` (each run draws into its own folder)."""
    return [str(Path(p).relative_to(maps)) for p in cell.split(";") if p]


def _split(path: Path, maps: Path) -> tuple[Path, list[list[str]]]:
    """The CSV without its heatmaps column (for the score comparison), and that column's map names."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    where = rows[0].index("heatmaps")
    scores = path.with_name(path.stem + ".scores.csv")
    with open(scores, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([r[:where] + r[where + 1 :] for r in rows])
    return scores, [_map_names(r[where], maps) for r in rows[1:]]


def _whole_rows(path: Path) -> list[dict[str, str]]:
    """The rows a kill left complete (up to the last newline; a torn tail is what --resume drops)."""
    data = path.read_bytes() if path.exists() else b""
    return list(csv.DictReader(data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()))


@pytest.fixture(scope="module")
def reference(inputs, tiny_model_file, tmp_path_factory) -> tuple[Path, Path]:
    """The uninterrupted run: its CSV and its maps folder."""
    folder = tmp_path_factory.mktemp("heatmaps_reference")
    out, maps = folder / "pred.csv", folder / "maps"
    done = subprocess.run(_command(inputs, tiny_model_file, out, maps), env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 3, done.stderr  # two files are broken on purpose
    _, names = _split(out, maps)
    assert sum(len(n) == 3 for n in names) == N_IMAGES - 2 and sum(not n for n in names) == 2
    return out, maps


def _kill_soon(proc: subprocess.Popen, maps: Path, rng: random.Random, during_a_write: bool) -> None:
    """SIGKILL after a random pause, or the moment a map's temporary file exists (a PNG half-written)."""
    deadline = time.monotonic() + (10.0 if during_a_write else rng.uniform(0.0, 0.4))
    while time.monotonic() < deadline and proc.poll() is None:
        if during_a_write and any(maps.glob(".*.part")):
            break
        time.sleep(0.0005)
    kill(proc)


def test_sigkill_while_writing_maps_then_resume_equals_uninterrupted(inputs, tiny_model_file, reference, tmp_path):
    want_csv, want_maps = reference
    rng = random.Random(15)
    out, maps = tmp_path / "pred.csv", tmp_path / "maps"
    for round_, target in enumerate(sorted(rng.sample(range(2, N_IMAGES - 4), 3))):
        proc = start(_command(inputs, tiny_model_file, out, maps, *(["--resume"] if round_ else [])))
        wait_for_rows(proc, out, target)
        _kill_soon(proc, maps, rng, during_a_write=round_ % 2 == 1)
        for row in _whole_rows(out):  # after every kill: each row on disk names complete maps
            for name in _map_names(row["heatmaps"], maps):
                Image.open(maps / name).verify()
    done = subprocess.run(_command(inputs, tiny_model_file, out, maps, "--resume"), env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    scores, names = _split(out, maps)
    want_scores, want_names = _split(want_csv, want_maps)
    assert_same_rows(scores, want_scores)
    assert names == want_names  # the same maps, under the same names, row for row
    for name in (n for row in names for n in row):
        Image.open(maps / name).verify()  # a whole PNG: every chunk's CRC checked
        assert np.array_equal(cv2.imread(str(maps / name)), cv2.imread(str(want_maps / name))), name
    # no stray map, none of a failed file, and no temporary file left by a kill mid-write
    assert sorted(p.name for p in maps.iterdir()) == sorted(p.name for p in want_maps.iterdir())
