"""Export of a finished training: validation scoring, the model card, and the weight file.

Everything the card says is measured here on the selected checkpoint, with the weights
rounded to the stored dtype, so a card describes exactly the file beside it. Split from
:mod:`.fit` so the loop and the bookkeeping of what it produced can be read apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from .. import __version__ as CXRKIT_VERSION
from ..models import ModelCard, activate, save_weights
from ..predict import Predictor
from ..preprocess import orientation_accuracy
from .config import ConfigError, TrainConfig
from .data import ImageSet, OrientationSet, XrayDataModule
from .metrics import (
    regression_metrics,
    subgroup_frame,
    subgroup_metrics,
    subgroup_regression,
    validation_metrics,
)
from .model import build_model

__all__ = ["write_model", "weights_path", "trust_note", "load_checkpoint_weights", "predict_logits", "DEMO_USE"]

log = logging.getLogger(__name__)

ModuleT = TypeVar("ModuleT", bound=nn.Module)

DEMO_USE = ("Demonstration / research only. Not a medical device; not for clinical decisions. "
            "Trained on a small sample; its validation AUCs show what the pipeline does, not clinical accuracy.")


def load_checkpoint_weights(model: ModuleT, checkpoint: Path) -> ModuleT:
    """Copy the ``model.*`` tensors of a Lightning checkpoint into ``model`` (strictly)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]  # tensors and plain data only
    weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    model.load_state_dict(weights, strict=True)
    return model


def predict_logits(model: nn.Module, images: ImageSet | OrientationSet, batch_size: int = 32, device: str | None = None) -> torch.Tensor:
    """fp32 logits of every image of a split, in order: the :class:`~cxrkit.predict.Predictor` forward pass
    that prediction runs at fp32, so a card's numbers are the ones users get (the model needs its ``.card``)."""
    predictor = Predictor(model, device=device or next(model.parameters()).device.type, precision="fp32",
                          calibrate=False)
    out = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([images.image(i) for i in range(start, min(start + batch_size, len(images)))])
        out.append(predictor.logits(batch).cpu())
    return torch.cat(out)


def trust_note(cfg: TrainConfig, summary: dict[str, Any], thresholds: bool) -> str:
    """A plain sentence on what the card's validation numbers can and cannot promise."""
    valid = summary["valid"]
    chosen = ["the checkpoint"] + (["the operating thresholds"] if thresholds else [])
    note = (f"Measured on {valid['images']} validation images ({valid['patients']} patients) from the same "
            f"sample as training; {' and '.join(chosen)} were chosen on them, so the numbers are optimistic, "
            "and they hold only for films drawn like these.")
    if cfg.data.select_on is not None and "selected_on" in summary:
        sel = summary["selected_on"]
        note += (f" Selection used only the {sel['images']} validation images ({sel['patients']} patients) with "
                 f"{sel['column']} == {sel['value']}; the per-group numbers under 'subgroups' say how the model "
                 "does on each part.")
    if cfg.select.caveat:
        note += " " + cfg.select.caveat.strip()
    return note


def weights_path(cfg: TrainConfig) -> Path:
    return Path(cfg.weights_out) if cfg.weights_out else Path(cfg.output_dir) / f"{cfg.name}.safetensors"


def write_model(cfg: TrainConfig, dm: XrayDataModule, best: Any, results: list[Any], machine: str, data_s: float,
                total_s: float) -> Path:
    """Score the selected run's best checkpoint on validation (as the file will store it) and write
    the weights with a card holding every number, per subgroup too. ``best``/``results`` are
    :class:`~cxrkit.train.fit.RunResult`; ``machine`` is the hardware line for the card."""
    from ..models.precision import lightning_precision
    model = load_checkpoint_weights(build_model(cfg, dm.label_names), best.best_checkpoint)
    stored = getattr(torch, cfg.weights_dtype)
    if stored != torch.float32:  # measure what will be shipped: the weights as the file will hold them
        with torch.no_grad():
            for key, tensor in model.state_dict().items():
                if tensor.is_floating_point():
                    rounded = tensor.to(stored)
                    if not torch.isfinite(rounded).all():
                        raise ConfigError("weights_dtype", f"{cfg.weights_dtype} cannot hold {key} (values out of "
                                          "range); use bfloat16")
                    tensor.copy_(rounded)
    gpu = cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if cfg.task != "reconstruction":  # an autoencoder is scored on its reconstructions, below
        # validation runs through the Predictor with the training card (labels, task, size) the model carries
        logits = predict_logits(model, dm.valid_set, device="cuda" if gpu else "cpu")
        model = model.cpu()
    valid = dm.valid_set
    ids = [Path(p).name for p in valid.dataset.frame["path"].astype(str)]
    if len(set(ids)) != len(ids):
        ids = [f"{i}:{p}" for i, p in enumerate(ids)]
    thresholds: dict[str, float] = {}
    threshold_method: str | None = cfg.select.threshold_method
    group_columns = [*cfg.select.groups, *([cfg.data.stratify] if cfg.data.stratify else []),
                     *([cfg.data.select_on.column] if cfg.data.select_on else [])]
    groups = subgroup_frame(valid.dataset.frame, group_columns, cfg.select.age_bands, ids)
    if cfg.task == "reconstruction":
        from .reconstruction import reconstruction_validation

        validation = reconstruction_validation(model, dm, cfg, device="cuda" if gpu else "cpu")
        threshold_method = None
    elif cfg.task == "regression":
        pred = logits.squeeze(1).numpy()
        target = valid.targets.numpy()
        reference = float(dm.train_set.targets.mean())
        validation = regression_metrics(pred, target, valid.patients, reference=reference,
                                        n_bootstrap=cfg.select.bootstrap, seed=cfg.seed)
        validation["subgroups"] = subgroup_regression(pred, target, valid.patients, groups, reference=reference,
                                                      n_bootstrap=cfg.select.bootstrap, seed=cfg.seed)
        threshold_method = None
    else:
        probs = activate(logits, cfg.task).numpy()
        if cfg.task == "multilabel":
            truth = valid.targets.numpy()
        else:
            truth = np.eye(len(dm.label_names))[valid.targets.numpy()]
        measured = validation_metrics(truth, probs, dm.label_names, ids, valid.patients, task=cfg.task,
                                      threshold_method=cfg.select.threshold_method,
                                      n_bootstrap=cfg.select.bootstrap, seed=cfg.seed)
        evaluation = measured.pop("evaluation")
        subgroups = subgroup_metrics(evaluation, groups, n_bootstrap=cfg.select.bootstrap, seed=cfg.seed)
        try:
            from ..evaluate import write_report

            write_report(evaluation, Path(cfg.output_dir) / "validation", plots=False,
                         sources={"predictions": f"{cfg.name}, best-val-loss checkpoint", "labels": "validation split"})
        except Exception as exc:  # the report is a convenience; the card holds the numbers
            log.warning("could not write the validation report: %s", exc)
        if cfg.task == "multilabel":
            thresholds = measured["thresholds"]
        else:
            threshold_method = "argmax"
        validation = {"auc": {k: {"auc": v["auc"], "ci_low": v["auc_ci_low"], "ci_high": v["auc_ci_high"],
                                  "n_pos": v["n_pos"], "n_neg": v["n_neg"], "threshold": v["threshold"],
                                  "sensitivity": v["sensitivity"], "specificity": v["specificity"]}
                          for k, v in measured["per_label"].items()},
                      "auc_mean": measured["mean"].get("auc"), "subgroups": subgroups}
        if "accuracy" in measured:
            validation["accuracy"] = measured["accuracy"]
        if cfg.data.target == "orientation":
            validation.update(orientation_accuracy(valid.targets.numpy(), probs.argmax(1)))
    size = dm.size
    summary = dm.summary()
    start = cfg.model.weights or "random initialisation (no pretrained weights)"
    card = ModelCard(
        name=cfg.name,
        architecture=cfg.model.architecture,
        labels=list(dm.label_names),
        input_size=size,
        task=cfg.task,
        thresholds=thresholds,
        threshold_method=threshold_method if thresholds or cfg.task != "multilabel" else None,
        description=cfg.description or f"{cfg.model.architecture} trained with cxrkit ({cfg.task}).",
        intended_use=DEMO_USE,
        license=cfg.license,
        provenance={
            "source": "trained with cxrkit train",
            "cxrkit_version": CXRKIT_VERSION,
            "torch": torch.__version__,
            "lightning": pl.__version__,
            "started_from": start,
            "config": cfg.to_dict(),
        },
        training={
            "dataset": cfg.data.dataset,
            "images_root": cfg.data.root,
            "label_file": cfg.data.label_file,
            "views": cfg.data.views,
            "split": {
                "method": "official" if cfg.data.split == "official" else "patient-level, seeded",
                "ratios": cfg.data.split,
                "seed": cfg.data.split_seed,
                "excluded_patients": [str(p) for p in cfg.data.exclude_patients],
                **summary,
            },
            "augmentation": dm.augment.values,
            "optimizer": {"name": cfg.optim.name, "lr": cfg.optim.lr, "weight_decay": cfg.optim.weight_decay,
                          "scheduler": cfg.optim.scheduler},
            "batch_size": cfg.data.batch_size,
            "precision": lightning_precision(cfg.trainer.precision, cfg.trainer.accelerator),
            "runs": [{"seed": r.seed, "best_epoch": r.best_epoch, "epochs": r.epochs,
                      "train_time_s": round(r.wall_time_s, 1), **r.metrics} for r in results],
            "selected_seed": best.seed,
            "selected_by": cfg.select.metric + " (validation)",
            "best_epoch": best.best_epoch,
            "epochs_run": best.epochs,
            "history": best.history,
            "hardware": machine,
            "data_preparation_s": round(data_s, 1),
            "train_time_s": round(best.wall_time_s, 1),
            "train_time_note": "wall time in fit for the selected run, summed over interruptions and resumes",
            "wall_time_s": round(total_s, 1),
        },
        metrics={
            "validation": {
                "measured_on": f"validation split ({summary['valid']['images']} images, "
                               f"{summary['valid']['patients']} patients), best-val-loss checkpoint, fp32",
                "ci": f"95 % percentile bootstrap, {cfg.select.bootstrap} patient-level resamples",
                "thresholds_chosen_on": "validation" if thresholds else None,
                "selected_on": (f"validation images with {cfg.data.select_on.column} == {cfg.data.select_on.value}"
                                if cfg.data.select_on else "the whole validation split"),
                "how_far_to_trust": trust_note(cfg, summary, bool(thresholds)),
                **validation,
            },
        },
    )
    path = weights_path(cfg)
    plain = build_model(cfg, dm.label_names)
    plain.load_state_dict(model.state_dict())
    save_weights(plain, card, path, dtype=None if stored == torch.float32 else stored)
    log.info("wrote %s", path)
    return path
