"""Callbacks of a training run: best-val-loss checkpoint, resumable last checkpoint, early stopping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from ..atomic import replace_durably
from .config import TrainerConfig

__all__ = ["LastCheckpoint", "build_callbacks"]


class LastCheckpoint(Callback):
    """``last.ckpt`` after every epoch (and every ``every_n_steps`` steps), written atomically.

    Saved at ``on_train_epoch_end``, after validation has stepped the LR schedule, early
    stopping and the best checkpoint, so the file holds the complete state of the run. The
    temporary file + rename means a kill during the write leaves the previous one intact.
    """

    def __init__(self, path: str | Path, every_n_steps: int | None = None):
        self.path = Path(path)
        self.every_n_steps = every_n_steps

    def _save(self, trainer: pl.Trainer) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            replace_durably(tmp, self.path)  # synced, so a crash right after cannot lose it

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)


def build_callbacks(cfg: TrainerConfig, checkpoint_dir: Path) -> tuple[ModelCheckpoint, list[Callback]]:
    """The best-val-loss checkpoint (returned first, for its path) and the full callback list."""
    best = ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor="val_loss", mode="min", save_top_k=1,
                           save_last=False, enable_version_counter=False, save_on_train_epoch_end=False)
    callbacks: list[Callback] = [best, LastCheckpoint(checkpoint_dir / "last.ckpt", cfg.checkpoint_every_n_steps)]
    if cfg.early_stop_patience:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=cfg.early_stop_patience,
                                       check_on_train_epoch_end=False))
    return best, callbacks
