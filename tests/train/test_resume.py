"""Exact resume: a run killed mid-epoch and resumed ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

from cxrkit.train import config_from_dict, fit, prepare_data

from .conftest import tiny_config


class Killed(RuntimeError):
    """Stands in for SIGKILL: training stops right after a step, with no clean shutdown."""


class KillAfter(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            raise Killed(f"killed after step {trainer.global_step}")


class KillAtEpochEnd(Callback):
    """Kills right after the end-of-epoch checkpoint (validation, LR schedule and early stopping done)."""

    def on_train_epoch_end(self, trainer, pl_module):
        raise Killed(f"killed at the end of epoch {trainer.current_epoch}")


def _config(root, out, extra=None):
    raw = tiny_config(root, out, data={"augment": {"preset": "xrv"}, "cache": True},
                      optim={"name": "sgd", "lr": 0.05, "scheduler": "plateau", "plateau_patience": 0},
                      trainer={"max_epochs": 3, "checkpoint_every_n_steps": 1, "early_stop_patience": None})
    raw["model"]["drop_rate"] = 0.0
    return config_from_dict(raw)


@pytest.mark.slow  # three runs, each trained, killed and resumed: ~8-11 s apiece
@pytest.mark.parametrize("kill_step", [4, 7, None], ids=["mid-epoch", "last-batch", "after-epoch-end"])
def test_resume_after_kill_gives_identical_weights(tiny_csv, tmp_path, kill_step):
    # 40 images, 70 % train by patient -> 28 images, batch 4, drop_last -> 7 steps per epoch.
    cfg_a = _config(tiny_csv, tmp_path / "a")
    data = prepare_data(cfg_a)
    steps_per_epoch = len(data.train_set) // 4
    assert kill_step is None or kill_step < 3 * steps_per_epoch
    uninterrupted = load_file(fit(cfg_a, data=data))

    cfg_b = _config(tiny_csv, tmp_path / "b")
    with pytest.raises(Killed):
        fit(cfg_b, data=data, callbacks=[KillAfter(kill_step) if kill_step else KillAtEpochEnd()])
    assert (tmp_path / "b" / "run" / "checkpoints" / "last.ckpt").is_file()
    resumed = load_file(fit(cfg_b, data=data))

    assert uninterrupted.keys() == resumed.keys()
    for key in uninterrupted:
        assert torch.equal(uninterrupted[key], resumed[key]), key


def test_finished_run_is_reused_not_retrained(tiny_csv, tmp_path):
    cfg = _config(tiny_csv, tmp_path)
    cfg.trainer.max_epochs = 1
    first = load_file(fit(cfg))
    again = load_file(fit(cfg, callbacks=[KillAfter(0)]))  # would raise if it trained again
    assert all(torch.equal(first[k], again[k]) for k in first)
