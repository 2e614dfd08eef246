"""`cxr predict` / `cxr convert` under faults: Ctrl-C, a full disk, a read-only destination, kill -9.

Why: long jobs over hospital exports get interrupted and run out of space. In each case the
real process is driven with a real signal or a real OS limit, and the promise checked is
the README's: one clear line, a documented exit code, no traceback, and an output that
``--resume`` completes to exactly what an uninterrupted run writes (rows, order, values).
"""

from __future__ import annotations

import random
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cxrkit.labels import PATHOLOGIES

from .conftest import (
    ENV,
    N_IMAGES,
    assert_same_rows,
    cli,
    csv_rows,
    kill,
    start,
    stderr_lines,
    tear_last_row,
    wait_for_rows,
)

pytestmark = pytest.mark.subprocess  # every test runs `cxr` in a child process


@pytest.fixture(scope="module")
def reference(inputs, tiny_model_file, tmp_path_factory) -> Path:
    """The uninterrupted run every faulted run must end up equal to."""
    out = tmp_path_factory.mktemp("reference") / "ref.csv"
    done = subprocess.run(cli("predict", str(inputs), "--model", str(tiny_model_file), "-o", str(out),
                               "--batch-size", "2"), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr  # two files are broken on purpose
    header, rows = csv_rows(out)
    assert header[:3] == ["file", "status", "error"] and header[3:] == list(PATHOLOGIES)
    assert len(rows) == N_IMAGES and sum(r[1] == "error" for r in rows) == 2
    return out


def _predict(inputs: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return cli("predict", str(inputs), "--model", str(model), "-o", str(out), "--batch-size", "2", *extra)


# --- Ctrl-C ----------------------------------------------------------------------------------

def test_sigint_flushes_rows_says_one_line_exits_130_and_resumes(inputs, tiny_model_file, reference, tmp_path):
    """SIGINT mid-run: every finished row is on disk (whole rows only), one line on stderr says
    how many and how to continue, exit 130, no traceback; --resume completes the output."""
    out = tmp_path / "pred.csv"
    proc = subprocess.Popen(_predict(inputs, tiny_model_file, out), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_rows(proc, out, 5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = stderr_lines(err)
    assert len(lines) == 1 and lines[0].startswith("interrupted:"), lines
    assert str(out) in lines[0] and "--resume" in lines[0]
    data = out.read_bytes()
    assert data.endswith(b"\n")  # no half-written row
    header, rows = csv_rows(out)
    assert 5 <= len(rows) < N_IMAGES
    assert all(len(r) == len(header) for r in rows)
    assert f"{len(rows)} new rows kept" in lines[0]  # the line counts what is really on disk
    done = subprocess.run(_predict(inputs, tiny_model_file, out, "--resume"), env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert f"{len(rows)} already done" in done.stderr
    assert_same_rows(out, reference)


def test_sigint_during_convert_keeps_the_manifest_resumable(inputs, tmp_path):
    """`cxr convert` shares the batch loop: same line, same code, and --resume converts the rest."""
    many = tmp_path / "many"
    many.mkdir()
    for i in range(150):  # enough work that the signal lands mid-run
        shutil.copy(inputs / f"img_{i % (N_IMAGES - 3):03d}.png", many / f"f_{i:03d}.png")
    out = tmp_path / "png"
    cmd = cli("convert", str(many), "-o", str(out), "--workers", "1")
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_rows(proc, out / "convert.csv", 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(stderr_lines(err)) == 1 and err.startswith("interrupted:")
    _, rows = csv_rows(out / "convert.csv")
    assert 3 <= len(rows) < 150
    done = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _, rows = csv_rows(out / "convert.csv")
    assert sorted(Path(r[0]).name for r in rows) == sorted(p.name for p in many.iterdir())
    assert len(list(out.glob("*.png"))) == 150


# --- a full disk / a file-size limit ----------------------------------------------------------

def test_file_size_limit_is_one_line_exit_4_and_resumable(inputs, tiny_model_file, reference, tmp_path):
    """The output hits RLIMIT_FSIZE (EFBIG, what `ulimit -f` gives; ENOSPC takes the same path)
    in the middle of a batch: one line naming the file, exit 4, no traceback; after the limit is
    lifted --resume drops the torn row and completes the output to the reference."""
    data = reference.read_bytes()
    lines = data.split(b"\n")
    limit = len(lines[0]) + 1 + sum(len(line) + 1 for line in lines[1:8]) + len(lines[8]) // 2  # mid row 8
    out = tmp_path / "pred.csv"

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(_predict(inputs, tiny_model_file, out), env=ENV, capture_output=True, text=True,
                          timeout=300, preexec_fn=cap)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    err = stderr_lines(done.stderr)
    assert len(err) == 1 and f"cannot write {out}" in err[0] and "--resume" in err[0], err
    assert "File too large" in err[0]
    assert 0 < out.stat().st_size <= limit
    done = subprocess.run(_predict(inputs, tiny_model_file, out, "--resume"), env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert_same_rows(out, reference)


def test_no_room_even_for_the_header(inputs, tiny_model_file, tmp_path):
    """A limit below the header: the same one-line error and exit 4 before any image is read."""
    out = tmp_path / "pred.csv"
    done = subprocess.run(_predict(inputs, tiny_model_file, out), env=ENV, capture_output=True, text=True,
                          timeout=300, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10)))
    assert done.returncode == 4 and "Traceback" not in done.stderr, done.stderr
    assert len(stderr_lines(done.stderr)) == 1 and f"cannot write {out}" in done.stderr


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o ro tmpfs /mnt && ! touch /mnt/x"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_read_only_destination(inputs, tiny_model_file, tmp_path):
    """A read-only file system (a tmpfs mounted ro in a private mount namespace: as root, chmod
    would not stop a write): one line naming the output, exit 4, no traceback."""
    if not _unshare_works():
        pytest.skip("needs unshare with user+mount namespaces to mount a read-only tmpfs (root ignores chmod)")
    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "pred.csv"
    script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"'
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(ro),
                           *_predict(inputs, tiny_model_file, out)], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    err = stderr_lines(done.stderr)
    assert len(err) == 1 and f"cannot write {out}" in err[0] and "Read-only file system" in err[0], err


# --- kill -9 anywhere ----------------------------------------------------------------------------

def test_sigkill_at_random_points_then_resume_equals_uninterrupted(inputs, tiny_model_file, reference, tmp_path):
    """SIGKILL at three random points (row counts drawn from a fixed seed), plus a torn last row
    (what a kill during the write leaves), each followed by --resume: the final output is the
    uninterrupted run's, row for row. The writer flushes whole batches; resume drops a torn tail."""
    rng = random.Random(12)
    out = tmp_path / "pred.csv"
    cmd = _predict(inputs, tiny_model_file, out)
    targets = sorted(rng.sample(range(2, N_IMAGES - 4), 3))
    for round_, target in enumerate(targets):
        proc = start(cmd + (["--resume"] if round_ else []))
        wait_for_rows(proc, out, target)
        time.sleep(rng.uniform(0, 0.2))  # not only right after a flush
        kill(proc)
        if round_ == 1:  # the kill lands inside a write: a row cut at a random byte
            tear_last_row(out, rng)
    done = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert_same_rows(out, reference)
