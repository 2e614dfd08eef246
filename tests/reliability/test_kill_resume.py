"""kill -9 anywhere in `cxr age`, `cxr convert`, `cxr datasets shard` and `cxr train`, then a rerun: nothing is lost.

Why: a killed process runs no handler and flushes nothing, so only what was already on disk
survives. Each test kills the real process at points drawn from a fixed seed (and, where a
kill can land inside a write, also leaves what such a kill leaves), reruns it, and checks
that the final output equals an uninterrupted run's: rows and values for `age`, the manifest
and every PNG byte for byte for `convert`, every shard
byte for byte for `datasets shard` (with no torn shard ever visible), every weight tensor
exactly for `train`.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from .conftest import (
    ENV,
    N_IMAGES,
    assert_same_rows,
    cli,
    kill,
    kill_at_random_rows,
    start,
    wait_until,
)

TRAIN_CONFTEST = Path(__file__).resolve().parents[1] / "train" / "conftest.py"


# --- cxr age ------------------------------------------------------------------------------------

@pytest.mark.subprocess
def test_age_killed_at_random_points_resumes_to_the_uninterrupted_rows(inputs, tmp_path):
    """Two kills at random rows (the second followed by a row torn mid-write), then --resume."""
    rng = random.Random(7)
    reference = tmp_path / "ref.csv"

    def age(out: Path) -> list[str]:
        return cli("age", str(inputs), "-o", str(out), "--batch-size", "2")

    done = subprocess.run(age(reference), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr  # two inputs are broken on purpose
    out = tmp_path / "age.csv"
    kill_at_random_rows(lambda resume: age(out) + (["--resume"] if resume else []), out, rng)
    done = subprocess.run(age(out) + ["--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert_same_rows(out, reference)


# --- cxr convert ---------------------------------------------------------------------------------

def _converted(folder: Path) -> dict[str, bytes]:
    """Every visible PNG under ``folder`` by relative path (hidden temporaries excluded)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))
            if not p.name.startswith(".")}


@pytest.mark.subprocess
def test_convert_killed_at_random_points_resumes_to_identical_pngs(inputs, tmp_path):
    """Two kills at random manifest rows (the second followed by a row torn mid-write), then
    --resume: the manifest lists every file once, in order, and every PNG equals the
    uninterrupted run's byte for byte; no PNG is ever visible half-written."""
    rng = random.Random(11)
    reference, out = tmp_path / "ref", tmp_path / "out"

    def convert(folder: Path) -> list[str]:
        return cli("convert", str(inputs), "-o", str(folder), "--workers", "1")

    done = subprocess.run(convert(reference), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr  # two inputs are broken on purpose
    want = _converted(reference)
    manifest = out / "convert.csv"
    def visible_pngs_are_complete() -> None:
        for name, data in _converted(out).items():
            assert data == want[name], name

    kill_at_random_rows(lambda resume: convert(out) + (["--resume"] if resume else []), manifest, rng,
                        after_kill=visible_pngs_are_complete)
    done = subprocess.run(convert(out) + ["--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert _converted(out) == want
    assert not list(out.rglob(".*.part"))  # the temporary file a kill left is cleared on resume
    got_rows = manifest.read_text(encoding="utf-8").replace(str(out), "OUT")
    want_rows = (reference / "convert.csv").read_text(encoding="utf-8").replace(str(reference), "OUT")
    assert got_rows == want_rows


# --- cxr datasets shard ------------------------------------------------------------------------

SHARD_SAMPLES, PER_SHARD = 60, 4


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every visible file (hidden temporary and plan files excluded)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if not p.name.startswith(".")}


@pytest.mark.subprocess
def test_shard_killed_at_random_points_resumes_to_identical_shards(inputs, tmp_path):
    """Kills after a random number of finished shards (never leaving a torn tar under a shard's
    name, nor a dataset.json before the last shard), then --resume: every file equals the
    uninterrupted run's, byte for byte."""
    rng = random.Random(3)
    root = tmp_path / "folder"
    for i in range(SHARD_SAMPLES):
        label = root / ("a" if i % 2 else "b")
        label.mkdir(parents=True, exist_ok=True)
        shutil.copy(inputs / f"img_{i % (N_IMAGES - 3):03d}.png", label / f"f{i:03d}.png")

    def shard(out: Path) -> list[str]:
        return cli("datasets", "shard", "folder", "--root", str(root), "--out", str(out), "--size", "32",
                   "--per-shard", str(PER_SHARD))

    reference = tmp_path / "ref"
    done = subprocess.run(shard(reference), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    want = _digests(reference)
    n_shards = SHARD_SAMPLES // PER_SHARD
    assert len(want) == n_shards + 1 and "dataset.json" in want
    assert not [p for p in reference.iterdir() if p.name.startswith(".")]  # no plan or temporary file left

    out = tmp_path / "out"
    kept = []
    for round_, target in enumerate(sorted(rng.sample(range(1, n_shards - 2), 2))):
        proc = start(shard(out) + (["--resume"] if round_ else []))
        wait_until(proc, lambda n=target: len(list(out.glob("*.tar"))) >= n, f"{target} shards were written", poll=0.005)
        time.sleep(rng.uniform(0, 0.05))
        kill(proc)
        got = _digests(out)
        assert "dataset.json" not in got  # the index appears only with the last shard
        assert all(want[name] == digest for name, digest in got.items()), "a torn shard is visible"
        kept.append(len(got))
    assert kept == sorted(kept) and kept[-1] < n_shards  # each rerun kept the finished shards
    done = subprocess.run(shard(out) + ["--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _digests(out) == want
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no plan, no half-written shard left


def test_shard_resume_with_other_settings_is_refused(inputs, tmp_path):
    """A resumed run whose plan differs (another size) must not mix its shards with the old ones."""
    from cxrkit.datasets import folder_dataset
    from cxrkit.datasets.errors import DatasetError
    from cxrkit.datasets.shards import write_shards

    root = tmp_path / "folder" / "a"
    root.mkdir(parents=True)
    for i in range(6):
        shutil.copy(inputs / f"img_{i:03d}.png", root / f"f{i}.png")
    out = tmp_path / "out"
    dataset = folder_dataset(root.parent)
    write_shards(dataset, out, size=32, samples_per_shard=2)
    first = _digests(out)
    (out / ".shard.plan.json").write_text('{"size": 64}')  # what a killed run at another size leaves
    with pytest.raises(DatasetError, match="other settings") as caught:
        write_shards(dataset, out, size=32, samples_per_shard=2, resume=True)
    assert str(out) in str(caught.value)
    assert _digests(out) == first  # nothing was touched
    assert write_shards(dataset, out, size=32, samples_per_shard=2)["count"] == 6  # without resume: start over
    assert _digests(out) == first and not [p for p in out.iterdir() if p.name.startswith(".")]


# --- cxr train ----------------------------------------------------------------------------------

def _tiny_training():
    """The tiny CNN and data of tests/train (its conftest registers the architecture on import)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cxrkit_tests_train_tiny", TRAIN_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train_cmd(config: Path) -> list[str]:
    """``cxr train`` in a fresh interpreter that first registers the tests' tiny architecture."""
    boot = (f"import runpy, sys; runpy.run_path({str(TRAIN_CONFTEST)!r}); "
            "from cxrkit.cli.main import main; sys.argv = ['cxr'] + sys.argv[1:]; main()")
    return [sys.executable, "-c", boot, "train", "--config", str(config)]


def _write_config(tiny, root: Path, tmp: Path) -> Path:
    raw = tiny.tiny_config(root, tmp, data={"augment": {"preset": "xrv"}, "cache": True},
                           optim={"name": "sgd", "lr": 0.05, "scheduler": "plateau", "plateau_patience": 0},
                           trainer={"max_epochs": 3, "checkpoint_every_n_steps": 1, "early_stop_patience": None})
    raw["model"]["drop_rate"] = 0.0
    path = tmp / "train.yaml"
    tmp.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def tiny_csv_data(tmp_path_factory) -> Path:
    tiny = _tiny_training()
    return tiny.tiny_csv.__wrapped__(tmp_path_factory)


@pytest.mark.subprocess
def test_train_killed_mid_epoch_and_mid_checkpoint_resumes_to_identical_weights(tiny_csv_data, tmp_path):
    """Kills after random steps and once while last.ckpt's temporary file is being written; a
    torn temporary checkpoint is left behind as such a kill leaves it. Rerunning the same
    command resumes each time, and the final weights equal an uninterrupted run's exactly
    (deterministic settings: fixed seeds, no dropout, the resume restores RNG and loader state)."""
    tiny = _tiny_training()
    rng = random.Random(5)
    ref_cfg = _write_config(tiny, tiny_csv_data, tmp_path / "a")
    done = subprocess.run(_train_cmd(ref_cfg), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reference = load_file(tmp_path / "a" / "run" / "test.tiny.safetensors")

    cfg = _write_config(tiny, tiny_csv_data, tmp_path / "b")
    last = tmp_path / "b" / "run" / "checkpoints" / "last.ckpt"
    temp = last.with_name(last.name + ".tmp")
    # 3 epochs x 7 steps, last.ckpt replaced after each step: a kill after 1-5 of them, mid-step
    proc = start(_train_cmd(cfg))
    target, seen = rng.randint(1, 5), [None]

    def stepped() -> bool:
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp != seen[-1]:
            seen.append(stamp)
        return len(seen) > target

    wait_until(proc, stepped, f"{target} checkpoints", timeout=240, poll=0.002)
    time.sleep(rng.uniform(0, 0.1))
    kill(proc)
    # one more kill, timed to land while the next checkpoint is being written
    temp.unlink(missing_ok=True)  # the kill above may have left one; wait for a fresh save
    proc = start(_train_cmd(cfg))
    wait_until(proc, temp.exists, "a checkpoint save", timeout=240, poll=0)
    kill(proc)
    assert last.is_file()  # the previous checkpoint is intact beside any temporary file
    temp.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a save cut halfway
    done = subprocess.run(_train_cmd(cfg), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    weights = tmp_path / "b" / "run" / "test.tiny.safetensors"
    resumed = load_file(weights)
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert not list(weights.parent.glob(".*.part"))  # the atomic writes left no temporary file
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert (resumed[key] == reference[key]).all(), key
