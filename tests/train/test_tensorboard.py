"""TensorBoard logs of a tiny fit: train/val loss, per-label val AUROC and the learning rate per epoch."""

from __future__ import annotations

import pytest

from cxrkit.train import config_from_dict, fit

from .conftest import tiny_config

pytest.importorskip("tensorboard")


def test_fit_writes_tensorboard_scalars(tiny_csv, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(config_from_dict(tiny_config(tiny_csv, tmp_path, select={"bootstrap": 5})))
    events = sorted((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard events file written"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("train_loss_epoch", "train_loss_step", "val_loss", "val_auc", "lr"):
        assert tag in tags, (tag, sorted(tags))
    per_label = sorted(t for t in tags if t.startswith("val_auc/"))
    assert per_label and set(per_label) <= {"val_auc/A", "val_auc/B", "val_auc/C"}
    # One value per epoch (2 epochs) for the epoch-level scalars.
    assert len(acc.Scalars("val_loss")) == 2 and len(acc.Scalars("lr")) == 2
    assert acc.Scalars("lr")[0].value == pytest.approx(0.01)
    assert len(acc.Scalars(per_label[0])) == 2


def test_csv_fallback_without_tensorboard(monkeypatch, tmp_path):
    import builtins

    from lightning.pytorch.loggers import CSVLogger

    from cxrkit.train.fit import _logger

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("no tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert isinstance(_logger(tmp_path), CSVLogger)
