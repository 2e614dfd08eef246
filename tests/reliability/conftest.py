"""What the fault tests share: the CLI as a real process, waiting for progress, killing it, comparing outputs.

Why here: every long command (predict, convert, age, train, datasets shard) is checked the
same way, by driving the real ``cxr`` process with real signals and comparing its final
output to an uninterrupted run's; one copy of that machinery keeps the checks alike.
Test modules import the helpers with ``from .conftest import ...``.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import SCORE_TOL

N_IMAGES = 24
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
ENV.pop("CXRKIT_DEBUG", None)


def cli(*args: str) -> list[str]:
    """argv running ``cxr ARGS`` with this interpreter (no reliance on the console script)."""
    return [sys.executable, "-m", "cxrkit.cli.main", *args]


def csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def assert_same_rows(got: Path, want: Path) -> None:
    """Same files in the same order, same status and error, every number within ``SCORE_TOL``."""
    header, rows = csv_rows(got)
    want_header, want_rows = csv_rows(want)
    assert header == want_header
    assert [r[0] for r in rows] == [r[0] for r in want_rows]
    for row, ref in zip(rows, want_rows, strict=True):
        assert row[1:3] == ref[1:3], row[0]
        for cell, expected in zip(row[3:], ref[3:], strict=True):
            assert (cell == "") == (expected == ""), row[0]
            if cell:
                assert abs(float(cell) - float(expected)) <= SCORE_TOL, (row[0], cell, expected)


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], what: str, timeout: float = 120,
               poll: float = 0.02) -> None:
    """Block until ``ready()`` holds, or fail if the run ended (or stalled) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            return
        time.sleep(poll)
    err = proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else ""
    pytest.fail(f"the run ended (or stalled) before {what}: {err[-500:]}")


def wait_for_rows(proc: subprocess.Popen, path: Path, n: int, timeout: float = 120) -> None:
    """Block until ``path`` holds at least ``n`` finished rows (or fail if the run ended first)."""
    wait_until(proc, lambda: path.exists() and path.read_bytes().count(b"\n") >= n + 1, f"{n} rows were written",
               timeout)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL: no handler runs, nothing is flushed or cleaned up."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if proc.stderr:
        proc.stderr.close()


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env or ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def tear_last_row(path: Path, rng) -> None:
    """What a kill in the middle of a row's write leaves: the last row cut at a random byte."""
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + rng.randrange(1, len(data) - last - 1)])


def kill_at_random_rows(command: Callable[[bool], list[str]], rows_file: Path, rng, *, kills: int = 2,
                        after_kill: Callable[[], None] | None = None) -> None:
    """Run ``command(resume)`` ``kills`` times, each SIGKILLed a moment after a seeded random number
    of rows reached ``rows_file`` (``resume`` is False only the first time); ``after_kill`` checks
    what is on disk after each kill, and the last kill also tears the last row mid-write."""
    for round_, target in enumerate(sorted(rng.sample(range(2, N_IMAGES - 4), kills))):
        proc = start(command(round_ > 0))
        wait_for_rows(proc, rows_file, target)
        time.sleep(rng.uniform(0, 0.2))
        kill(proc)
        if after_kill is not None:
            after_kill()
        if round_ == kills - 1:
            tear_last_row(rows_file, rng)


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def inputs(tmp_path_factory, example_images) -> Path:
    """Copies of the example radiographs, the example DICOM and two broken files, in a folder."""
    folder = tmp_path_factory.mktemp("reliability") / "in"
    folder.mkdir()
    for i in range(N_IMAGES - 3):
        shutil.copy(example_images[i % len(example_images)], folder / f"img_{i:03d}.png")
    shutil.copy(example_images[0].parent / "siim_chest_pa.dcm", folder / "img_900.dcm")
    (folder / "img_901.png").write_bytes(example_images[0].read_bytes()[:500])  # truncated
    (folder / "img_902.dcm").write_bytes(b"")  # empty
    return folder
