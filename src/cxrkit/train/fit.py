"""``fit(config)``: train (N seeds), select on validation, and hand the best run to :mod:`.export`.

Everything that decides what the model becomes - the checkpoint (best validation loss),
the run among ``--runs N`` (validation metric) and the operating thresholds - is
decided on the validation split. There is no test split in this function on purpose:
evaluate the written model on held-out data with ``cxr evaluate``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from ..models import get_architecture
from ..models.precision import cpu_info, lightning_precision
from .augment import Augment
from .callbacks import build_callbacks
from .config import ConfigError, TrainConfig
from .config_rules import METRIC_DIRECTIONS
from .data import XrayDataModule
from .export import load_checkpoint_weights, predict_logits, weights_path, write_model
from .model import build_model
from .module import CxrModule, TaskLoss

__all__ = ["fit", "RunResult", "prepare_data", "build_model", "make_trainer", "predict_logits",
           "load_checkpoint_weights", "hardware"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """One seed's run: where its best checkpoint is and how it scored on validation there."""

    seed: int
    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    metrics: dict[str, float]  # val_loss, val_auc / val_mae at the best checkpoint
    epochs: int
    wall_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "run_dir": str(self.run_dir), "best_checkpoint": str(self.best_checkpoint),
                "best_epoch": self.best_epoch, "metrics": self.metrics, "epochs": self.epochs,
                "wall_time_s": self.wall_time_s, "history": self.history}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        return cls(seed=data["seed"], run_dir=Path(data["run_dir"]), best_checkpoint=Path(data["best_checkpoint"]),
                   best_epoch=data["best_epoch"], metrics=data["metrics"], epochs=data["epochs"],
                   wall_time_s=data["wall_time_s"], history=data.get("history", []))


def hardware() -> str:
    """A one-line description of the machine, for the card."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    cpu = cpu_info()[0] or platform.processor() or platform.machine()
    return f"CPU: {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}"


def prepare_data(cfg: TrainConfig) -> XrayDataModule:
    """Load, split and (optionally) cache the data once; shared by every run of ``--runs``."""
    size = cfg.model.input_size or get_architecture(cfg.model.architecture).input_size
    return XrayDataModule(cfg.data, cfg.task, size, Augment(cfg.data.augment, size))


def _loss(cfg: TrainConfig, dm: XrayDataModule) -> TaskLoss:
    targets = dm.train_set.targets
    pos_weight = class_weights = None
    if cfg.task == "multilabel" and cfg.loss.pos_weight is not None:
        if cfg.loss.pos_weight == "balanced":
            known = ~torch.isnan(targets)
            pos = (torch.nan_to_num(targets) * known).sum(0)
            neg = known.sum(0) - pos
            pos_weight = (neg / pos.clamp(min=1)).clamp(min=1.0, max=cfg.loss.pos_weight_max)
        else:
            assert isinstance(cfg.loss.pos_weight, dict)  # the config refuses any other string than "balanced"
            pos_weight = torch.tensor([float(cfg.loss.pos_weight.get(n, 1.0)) for n in dm.label_names])
    if cfg.task == "multiclass":
        k = len(dm.label_names)
        if cfg.loss.class_weights == "balanced":
            counts = torch.bincount(targets, minlength=k).float()
            class_weights = len(targets) / (k * counts.clamp(min=1))
        elif isinstance(cfg.loss.class_weights, list):
            class_weights = torch.tensor(cfg.loss.class_weights, dtype=torch.float32)
        if cfg.loss.class_multiplier:
            base = class_weights if class_weights is not None else torch.ones(k)
            class_weights = base * torch.tensor(cfg.loss.class_multiplier, dtype=torch.float32)
        if class_weights is not None and len(class_weights) != k:
            raise ConfigError("loss.class_weights", f"needs {k} values (classes {dm.label_names}), got {len(class_weights)}")
    return TaskLoss(cfg.task, cfg.loss, pos_weight, class_weights)


def _logger(run_dir: Path) -> Any:
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(str(run_dir), name="logs")
    except ImportError:
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(str(run_dir), name="logs")  # version_0, version_1 (after a resume), ...


@contextlib.contextmanager
def torch_flags() -> Iterator[None]:
    """Restore torch's global determinism flags afterwards: Lightning's ``deterministic`` sets them
    process-wide, and a library should not leave them changed behind its caller's back."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             # torch sets this attribute through a module subclass, which its type information does not show
             torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
             torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.utils.deterministic.fill_uninitialized_memory = saved[2]  # type: ignore[attr-defined]  # as above
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[3], saved[4]


def make_trainer(cfg: TrainConfig, run_dir: Path, callbacks: list[Callback], logger: Any = None) -> pl.Trainer:
    """The Lightning trainer of a config (devices / num_nodes / strategy select GPUs and DDP).

    Call it inside :func:`torch_flags`. Deterministic mode makes torch fill every new tensor
    with NaN (``fill_uninitialized_memory``), which cost ~30 % of a DenseNet training step on
    CPU; the results of correct kernels do not depend on it, so it is turned off.
    """
    tc = cfg.trainer
    trainer = pl.Trainer(
        max_epochs=tc.max_epochs,
        max_time=timedelta(minutes=tc.max_time_minutes) if tc.max_time_minutes else None,
        accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes, strategy=tc.strategy,
        # lightning_precision returns one of these three of Lightning's names; its signature says str
        precision=cast(Literal["32-true", "bf16-mixed", "16-mixed"], lightning_precision(tc.precision, tc.accelerator)),
        deterministic=tc.deterministic,
        gradient_clip_val=tc.gradient_clip, accumulate_grad_batches=tc.accumulate_grad_batches,
        limit_train_batches=tc.limit_train_batches, limit_val_batches=tc.limit_val_batches,
        log_every_n_steps=tc.log_every_n_steps, enable_progress_bar=tc.progress, enable_model_summary=False,
        num_sanity_val_steps=0, use_distributed_sampler=False, default_root_dir=str(run_dir),
        logger=_logger(run_dir) if logger is None else logger, callbacks=callbacks,
    )
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]  # see torch_flags
    return trainer


def _run_one(cfg: TrainConfig, dm: XrayDataModule, seed: int, run_dir: Path, resume: bool,
             extra_callbacks: list[Callback]) -> RunResult | None:
    done = run_dir / "run.json"
    if resume and done.is_file():
        log.info("%s already finished; reusing it", run_dir)
        return RunResult.from_json(json.loads(done.read_text()))
    tc = cfg.trainer
    pl.seed_everything(seed, workers=True, verbose=False)
    dm.seed = seed
    mean_target = float(dm.train_set.targets.mean()) if cfg.task == "regression" else None
    model = build_model(cfg, dm.label_names, head_bias=mean_target)
    if cfg.task == "reconstruction" and not cfg.model.weights:
        from .reconstruction import set_output_scale

        log.info("autoencoder output scaled by %.1f to the films' spread", set_output_scale(model, dm.train_set))
    module = CxrModule(model, cfg.task, dm.label_names, _loss(cfg, dm), cfg.optim, tc.channels_last, tc.max_epochs,
                       frozen_backbone=cfg.model.freeze_backbone, select_mask=dm.select_mask)

    def on_resume(checkpoint: dict[str, Any]) -> None:
        progress = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]
        epoch, completed = int(progress["processed"]), int(progress["completed"])
        batches = int(checkpoint["cxrkit"]["epoch_batches"]) if epoch == completed else 0
        dm.resume_from(epoch, batches)

    module.on_resume = on_resume
    checkpoint_dir = run_dir / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    ckpt_path = str(last) if resume and last.is_file() else None
    if ckpt_path is None and checkpoint_dir.exists():
        for stale in checkpoint_dir.glob("*.ckpt"):
            stale.unlink()
    best_cb, callbacks = build_callbacks(tc, checkpoint_dir)
    with torch_flags(), warnings.catch_warnings():
        trainer = make_trainer(cfg, run_dir, [*callbacks, *extra_callbacks])
        # cxrkit's sampler resumes mid-epoch itself (see XrayDataModule.resume_from); Lightning cannot tell.
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)  # never unpickle code on resume
    if not trainer.is_global_zero:
        return None
    history = module.history
    best_path = Path(best_cb.best_model_path) if best_cb.best_model_path else last
    best_epoch, metrics = _best_entry(history)
    result = RunResult(seed=seed, run_dir=run_dir, best_checkpoint=best_path, best_epoch=best_epoch, metrics=metrics,
                       epochs=len(history), wall_time_s=module.train_seconds, history=history)
    done.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _best_entry(history: list[dict[str, float]]) -> tuple[int, dict[str, float]]:
    """The epoch the best-val-loss checkpoint comes from (first minimum, as ModelCheckpoint keeps it)."""
    if not history:
        return -1, {}
    best = min(history, key=lambda h: (h["val_loss"], h["epoch"]))
    return int(best["epoch"]), {k: float(v) for k, v in best.items() if k not in ("epoch", "lr", "elapsed_s")}


def _score(result: RunResult, metric: str) -> float:
    value = result.metrics.get(metric, math.nan)
    if math.isnan(value):
        return math.inf
    return -value if METRIC_DIRECTIONS.get(metric) == "maximize" else value


def fit(config: TrainConfig, runs: int = 1, *, resume: bool = True,
        callbacks: list[Callback] | None = None, data: XrayDataModule | None = None) -> Path:
    """Train ``runs`` seeds (``config.seed``, +1, ...), keep the best on validation, write weights + card.

    Returns the path of the ``.safetensors`` file (its card is the ``.json`` beside it).
    ``resume=True`` continues each run from its ``last.ckpt`` when one exists (exactly, even
    mid-epoch) and reuses runs that already finished. ``callbacks`` are added to each run.
    """
    if runs < 1:
        from .config import ConfigError

        raise ConfigError("runs", f"must be at least 1, got {runs}")
    if config.trainer.num_threads:
        torch.set_num_threads(config.trainer.num_threads)
    started = time.perf_counter()
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    t0 = time.perf_counter()
    dm = data or prepare_data(config)
    data_s = time.perf_counter() - t0
    log.info("data ready in %.1f s: %s", data_s, dm.summary())
    results = []
    for r in range(runs):
        seed = config.seed + r
        run_dir = output_dir if runs == 1 else output_dir / f"run{r}-seed{seed}"
        result = _run_one(config, dm, seed, run_dir, resume, list(callbacks or []))
        if result is None:  # a non-zero DDP rank: rank 0 writes the model
            return weights_path(config)
        results.append(result)
        log.info("run %d (seed %d): %s at epoch %d", r, seed, result.metrics, result.best_epoch)
    best = min(results, key=lambda res: _score(res, config.select.metric))
    return write_model(config, dm, best, results, hardware(), data_s, time.perf_counter() - started)
