"""DDP by configuration: two CPU processes (gloo) train as one process with the global batch would.

Checked on real PNG files read by the training pipeline (the tiny CSV set): (a) every
training sample is loaded exactly once per epoch across the two ranks; (b) the weights rank
0 writes equal those of a single-process run with the same global batch; (c) a DDP run
killed with SIGKILL mid-epoch resumes from its last checkpoint to the same weights.

The model for (b) has no BatchNorm: on CPU, PyTorch's SyncBatchNorm is unavailable (it
requires a GPU), so each rank normalises over its own half batch and the runs legitimately
differ; with BatchNorm out, DDP's only difference is the order of float32 summation (each
rank's mean gradient, then the all-reduce average, against one mean over the whole batch).
That is ~1e-7 relative per step; SGD carries it linearly through 14 steps, so 1e-5 on the
weights is a margin of about 10x, while a run that shards or averages wrongly misses by
orders of magnitude (the negative control: a single process with the per-rank batch).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from cxrkit.models import list_architectures, register_model
from cxrkit.train import config_from_dict, fit

from .conftest import TinyCNN, tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]  # child processes launching ranks: 40-70 s a run

NO_BN = "test-tinycnn-nobn"
TESTS = str(Path(__file__).resolve().parents[1])
BATCH = 2  # per rank; 28 training images / 2 ranks / 2 = 7 full steps per epoch, nothing padded or dropped


class TinyNoBN(TinyCNN):
    """The tests' tiny CNN without its BatchNorm layers."""

    def __init__(self, num_classes: int = 2, in_chans: int = 1, drop_rate: float = 0.0):
        super().__init__(num_classes, in_chans, drop_rate)
        self.features = nn.Sequential(nn.Conv2d(in_chans, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())


if NO_BN not in list_architectures():
    @register_model(NO_BN, input_size=32, family="test", filter_fn=lambda state, model=None: state)
    def _no_bn(num_classes: int = 2, in_chans: int = 1, **kwargs) -> TinyNoBN:
        """A tiny CNN without BatchNorm for the DDP equivalence test."""
        return TinyNoBN(num_classes, in_chans, **kwargs)


# Lightning starts rank 1 by running this script again (LOCAL_RANK=1), so both ranks record
# which training samples they load: training items are (index, augmentation seed) pairs.
SCRIPT = """
import json, os, sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import train.test_ddp  # registers the test architectures in every process
from lightning.pytorch.callbacks import Callback
from cxrkit.train import fit, load_config
from cxrkit.train.data_sets import ImageSet

epoch, seen, slow = [0], [], float(os.environ.get("DDP_TEST_SLOW", "0"))
load = ImageSet.__getitem__

def recording(self, item):
    if isinstance(item, tuple):
        seen.append((epoch[0], int(item[0])))
        time.sleep(slow)
    return load(self, item)

ImageSet.__getitem__ = recording

class Epoch(Callback):
    def on_train_epoch_start(self, trainer, module):
        epoch[0] = trainer.current_epoch

out = fit(load_config({config!r}), callbacks=[Epoch()])
rank = int(os.environ.get("LOCAL_RANK", "0"))
with open(os.path.join({folder!r}, f"seen-{{rank}}.json"), "w") as handle:
    json.dump(seen, handle)
print("WROTE", out)
"""


def _raw(tiny_csv, out: Path, *, devices: int, batch: int, **trainer) -> dict:
    raw = tiny_config(tiny_csv, out, model={"architecture": NO_BN, "input_size": 32, "drop_rate": 0.0},
                      optim={"name": "sgd", "lr": 0.05},
                      trainer={"max_epochs": 2, "accelerator": "cpu", "devices": devices, "precision": "32-true",
                               "strategy": "ddp" if devices > 1 else "auto", "early_stop_patience": None, **trainer},
                      weights_dtype="float32")
    raw["data"] = {**raw["data"], "batch_size": batch,
                   "csv": {**raw["data"]["csv"], "label_columns": ["A", "B"]}}  # no unknown labels: equal loss weights
    return raw


def _free_port() -> int:
    """A port nothing listens on now, so concurrent test runs never join each other's process group."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ddp(tiny_csv, folder: Path, *, slow: float = 0.0, **trainer) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "ddp.yaml"
    config.write_text(yaml.safe_dump(_raw(tiny_csv, folder, devices=2, batch=BATCH, **trainer)))
    script = folder / "run_ddp.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=TESTS, config=str(config), folder=str(folder))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "DDP_TEST_SLOW": str(slow)}
    return subprocess.Popen([sys.executable, str(script)], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen) -> str:
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, output[-3000:]
    return output


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "run" / "test.tiny.safetensors")


def _card(folder: Path) -> dict:
    return json.loads((folder / "run" / "test.tiny.json").read_text())


@pytest.fixture(scope="module")
def ddp_run(tiny_csv, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp")
    output = _finish(_ddp(tiny_csv, folder))
    assert "MEMBER: 2/2" in output  # Lightning started a second (gloo) process
    return folder


def test_each_sample_once_per_epoch_across_ranks(ddp_run):
    card = _card(ddp_run)
    n = card["training"]["split"]["train"]["images"]
    assert n % (2 * BATCH) == 0, "the test needs a training split that fills every step of both ranks"
    seen = {rank: json.loads((ddp_run / f"seen-{rank}.json").read_text()) for rank in (0, 1)}
    for epoch in range(2):
        per_rank = [[i for e, i in seen[rank] if e == epoch] for rank in (0, 1)]
        assert len(per_rank[0]) == len(per_rank[1]) == n // 2
        assert sorted(per_rank[0] + per_rank[1]) == list(range(n))  # disjoint, complete
    assert card["training"]["epochs_run"] == 2


def test_weights_equal_single_process_with_the_global_batch(ddp_run, tiny_csv, tmp_path):
    ddp = _weights(ddp_run)
    single = load_file(fit(config_from_dict(_raw(tiny_csv, tmp_path / "one", devices=1, batch=2 * BATCH))))
    control = load_file(fit(config_from_dict(_raw(tiny_csv, tmp_path / "half", devices=1, batch=BATCH))))
    assert ddp.keys() == single.keys()
    gap = max(float((ddp[k] - single[k]).abs().max()) for k in ddp)
    control_gap = max(float((control[k] - single[k]).abs().max()) for k in ddp)
    assert gap < 1e-5, gap
    assert control_gap > 100 * 1e-5, control_gap  # the tolerance does tell a wrong global batch apart
    assert _card(ddp_run)["training"]["best_epoch"] == _card(tmp_path / "one")["training"]["best_epoch"]


def test_resume_after_sigkill_with_ddp(ddp_run, tiny_csv, tmp_path):
    folder = tmp_path / "killed"
    proc = _ddp(tiny_csv, folder, slow=0.25, checkpoint_every_n_steps=1)
    last = folder / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a step or two past the first checkpoint, mid-epoch
    if proc.poll() is not None:
        pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed:\n{proc.communicate()[0][-4000:]}")
    os.killpg(proc.pid, signal.SIGKILL)  # both ranks, no clean shutdown
    proc.communicate()
    assert last.is_file() and not (folder / "run" / "test.tiny.safetensors").exists()

    _finish(_ddp(tiny_csv, folder, checkpoint_every_n_steps=1))
    resumed, uninterrupted = _weights(folder), _weights(ddp_run)
    gap = max(float((resumed[k] - uninterrupted[k]).abs().max()) for k in resumed)
    assert gap < 1e-6, gap
