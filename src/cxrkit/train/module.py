"""The LightningModule: one model, one task loss, validation metrics, optimiser and schedule.

Schedulers are stepped by the module itself at the end of validation (not by Lightning
after the epoch), so the state saved in a checkpoint is always complete: a run resumed
from any checkpoint, mid-epoch or at its end, continues exactly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn

from ..models import activate
from .config import LossConfig, OptimConfig
from .metrics import auc_per_label
from .reconstruction import image_errors

__all__ = ["masked_bce", "TaskLoss", "CxrModule"]

log = logging.getLogger(__name__)


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy over the known (non-NaN) targets only, averaged over those.

    Unknown labels contribute neither loss nor gradient: TorchXRayVision's rule for
    training on datasets that each label only some findings.
    """
    known = ~torch.isnan(targets)
    safe = torch.where(known, targets, torch.zeros_like(targets))
    loss = F.binary_cross_entropy_with_logits(logits.float(), safe, pos_weight=pos_weight, reduction="none")
    loss = loss * known
    return loss.sum() / known.sum().clamp(min=1)


class TaskLoss(nn.Module):
    """The loss of a task: masked BCE (multilabel), weighted CE (multiclass), L1/MSE (regression, and
    reconstruction, where the target is the input film itself)."""

    pos_weight: torch.Tensor | None  # buffers, typed here as nn.Module cannot type them
    class_weights: torch.Tensor | None

    def __init__(self, task: str, cfg: LossConfig, pos_weight: torch.Tensor | None = None,
                 class_weights: torch.Tensor | None = None):
        super().__init__()
        self.task, self.kind = task, cfg.reconstruction if task == "reconstruction" else cfg.regression
        self.register_buffer("pos_weight", pos_weight, persistent=False)
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.task == "multilabel":
            return masked_bce(logits, targets, self.pos_weight)
        if self.task == "multiclass":
            return F.cross_entropy(logits.float(), targets, weight=self.class_weights)
        prediction = logits.float() if self.task == "reconstruction" else logits.float().squeeze(1)
        targets = targets.float()
        return F.l1_loss(prediction, targets) if self.kind == "l1" else F.mse_loss(prediction, targets)


class CxrModule(pl.LightningModule):
    """Trains ``model`` on one task; logs loss, per-label AUROC (or MAE) and learning rate per epoch."""

    def __init__(self, model: nn.Module, task: str, label_names: list[str], loss: TaskLoss, optim: OptimConfig,
                 channels_last: bool = True, max_epochs: int = 100, frozen_backbone: bool = False,
                 select_mask: torch.Tensor | None = None):
        super().__init__()
        #: validation rows whose loss and AUC pick the checkpoint and stop training (``data.select_on``);
        #: the whole split's loss is still logged, as ``val_loss_all``
        self.select_mask = select_mask
        self.model, self.task, self.label_names, self.loss_fn = model, task, list(label_names), loss
        self.frozen_backbone = frozen_backbone
        self.optim_cfg, self.channels_last, self.max_epochs = optim, channels_last, max_epochs
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.epoch_batches = 0  # batches trained in the current epoch (saved for mid-epoch resume)
        self.scheduler: Any = None
        self._val_logits: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self.history: list[dict[str, float]] = []
        self.on_resume: Callable[[dict[str, Any]], None] | None = None  # set by fit: called with the checkpoint when restoring
        self._seconds_before = 0.0  # training wall time of earlier (interrupted) processes of this run
        self._started: float | None = None

    @property
    def train_seconds(self) -> float:
        """Wall time spent in ``fit`` for this run, summed over interruptions and resumes."""
        now = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._seconds_before + now

    # -- steps -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        if self.task == "reconstruction":
            targets = images  # the (augmented) film the model sees is the one it must give back
        loss = self.loss_fn(self(images), targets)
        self.log("train_loss", loss, on_step=True, on_epoch=True, batch_size=len(images))
        self.epoch_batches += 1
        return loss

    def on_train_epoch_start(self) -> None:
        self.epoch_batches = 0
        if self.frozen_backbone:  # Lightning set train mode; a frozen backbone keeps its BatchNorm statistics
            self.model.eval()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, targets = batch
        logits = self(images).float()
        if self.task == "reconstruction":  # keep per-image numbers, not every reconstruction
            mse, ssim = image_errors(logits.detach(), images)
            l1 = (logits.detach() - images).abs().mean(dim=(1, 2, 3))
            logits, targets = torch.stack([mse if self.loss_fn.kind == "mse" else l1, mse, ssim], 1), mse
        self._val_logits.append(logits.detach().cpu())
        self._val_targets.append(targets.detach().cpu())

    def on_validation_epoch_start(self) -> None:
        self._val_logits, self._val_targets = [], []

    def on_validation_epoch_end(self) -> None:
        if not self._val_logits:
            return
        logits = torch.cat(self._val_logits)
        targets = torch.cat(self._val_targets)
        self._val_logits, self._val_targets = [], []
        metrics: dict[str, float] = {}
        loss = (lambda rows, _: rows[:, 0].mean()) if self.task == "reconstruction" else self.loss_fn
        if self.select_mask is not None:
            metrics["val_loss_all"] = float(loss(logits, targets))
            mask = self.select_mask[: len(logits)]  # limit_val_batches scores a prefix of the split
            if mask.any():
                logits, targets = logits[: len(mask)][mask], targets[: len(mask)][mask]
        val_loss = float(loss(logits, targets))
        metrics = {"val_loss": val_loss, **metrics}
        if self.task == "reconstruction":
            metrics["val_mse"], metrics["val_ssim"] = float(logits[:, 1].mean()), float(logits[:, 2].mean())
        elif self.task == "regression":
            metrics["val_mae"] = float((logits.squeeze(1) - targets).abs().mean())
        else:
            probs = activate(logits, self.task)
            truth = targets.numpy() if self.task == "multilabel" else np.eye(len(self.label_names))[targets.numpy()]
            aucs = auc_per_label(truth, probs.numpy())
            finite = [a for a in aucs if math.isfinite(a)]
            metrics["val_auc"] = float(np.mean(finite)) if finite else float("nan")
            for name, value in zip(self.label_names, aucs, strict=True):
                if math.isfinite(value):
                    self.log(f"val_auc/{name}", value, sync_dist=False)
        if self.trainer.world_size > 1:
            # BatchNorm statistics differ between DDP processes; rank 0's numbers decide for all,
            # so the LR schedule, early stopping and checkpoints never diverge between ranks.
            metrics = self.trainer.strategy.broadcast(metrics, src=0)
        val_loss = metrics["val_loss"]
        for key, value in metrics.items():
            self.log(key, value, prog_bar=key in ("val_loss", "val_auc"), sync_dist=False)
        if self.trainer.sanity_checking:
            return
        self.log("lr", self._optimizer().param_groups[0]["lr"])
        self.history.append({"epoch": int(self.current_epoch), **metrics, "lr": self._optimizer().param_groups[0]["lr"],
                             "elapsed_s": round(self.train_seconds, 1)})
        log.info("epoch %d: %s", self.current_epoch, ", ".join(f"{k} {v:.4f}" for k, v in self.history[-1].items() if k not in ("epoch", "elapsed_s")))
        self._step_scheduler(val_loss)

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        cfg = self.optim_cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer: torch.optim.Optimizer
        if cfg.name == "sgd":
            optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        elif cfg.name == "adam":
            optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), weight_decay=cfg.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), weight_decay=cfg.weight_decay)
        if cfg.scheduler == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr)
        elif cfg.scheduler == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, self.max_epochs - cfg.warmup_epochs), eta_min=cfg.min_lr)
        if cfg.warmup_epochs:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr / (cfg.warmup_epochs + 1)
        return optimizer

    def _optimizer(self) -> torch.optim.Optimizer:
        """The one optimizer :meth:`configure_optimizers` made, unwrapped from Lightning's wrapper."""
        wrapped = self.optimizers()
        assert not isinstance(wrapped, list), "configure_optimizers returns one optimizer"
        return wrapped.optimizer if isinstance(wrapped, LightningOptimizer) else wrapped

    def _step_scheduler(self, val_loss: float) -> None:
        cfg = self.optim_cfg
        epoch = int(self.current_epoch) + 1  # epochs completed after this one
        optimizer = self._optimizer()
        if epoch < cfg.warmup_epochs:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * (epoch + 1) / (cfg.warmup_epochs + 1)
            return
        if epoch == cfg.warmup_epochs and cfg.warmup_epochs:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
            return
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_loss)
        else:
            self.scheduler.step()

    # -- exact resume ------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["cxrkit"] = {
            "epoch_batches": self.epoch_batches,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "train_seconds": self.train_seconds,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("cxrkit")
        if not state:
            return
        self._resume_state = state
        self.history = list(state.get("history", []))
        self._seconds_before = float(state.get("train_seconds", 0.0))
        torch.set_rng_state(state["torch_rng"])
        if self.on_resume is not None:
            self.on_resume(checkpoint)

    def on_fit_start(self) -> None:
        self._started = time.perf_counter()

    def on_train_start(self) -> None:
        state = getattr(self, "_resume_state", None)
        if state and state.get("scheduler") is not None and self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state:
            self.epoch_batches = int(state["epoch_batches"])
        self._resume_state = None
