"""Training data: a dataset from the config, a seeded patient-level split, targets, and the loaders.

Images are decoded, centre-cropped and resized once and (by default) kept in memory as
float16 (:mod:`.data_sets`): on a CPU the PNG decode would otherwise cost more than the
model. The loaders use the resumable :class:`~.data_sets.EpochSampler`, so an interrupted
run resumes on exactly the batches it would have seen.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..datasets import XrayDataset, open_dataset
from ..datasets.metadata import join_metadata
from ..datasets.splits import (
    assert_no_leakage,
    official_split,
    patient_split,
    stratified_patient_split,
)
from ..preprocess import ORIENTATIONS
from .augment import Augment
from .config import ConfigError, DataConfig
from .data_sets import EpochSampler, ImageSet, OrientationSet, Targets, card_input

__all__ = ["build_dataset", "split_train_valid", "group_column", "mask_labels", "sampler_weights", "Targets", "make_targets", "ImageSet", "OrientationSet", "EpochSampler", "XrayDataModule"]

log = logging.getLogger(__name__)


def build_dataset(cfg: DataConfig, size: int | None = None) -> Any:
    """The full dataset a config names (several ``sources`` merged by label name), minus excluded
    patients and (optionally) images missing on disk."""
    if cfg.sources:
        from ..datasets.merge import merge

        parts = []
        for source in cfg.sources:  # a source inherits the keys it does not set from data:
            part = _single(cfg.model_copy(update={"sources": [], "max_images": None, "labels": None, **source}))
            part.size = size
            part.input_transform = card_input(size) if size else None
            parts.append(part)
        merged = merge(parts, labels=cfg.labels or "union")
        return merged.subset(np.arange(len(merged))[: cfg.max_images])
    return _single(cfg)


def _single(cfg: DataConfig) -> XrayDataset:
    dataset = open_dataset(cfg.dataset, cfg.root, cfg.label_file, files=cfg.files, csv=cfg.csv, views=cfg.views,
                           labels=cfg.labels)
    if cfg.metadata:
        dataset.frame = join_metadata(dataset.frame, cfg.metadata)
    keep = np.ones(len(dataset), dtype=bool)
    if cfg.exclude_patients:
        excluded = {str(p) for p in cfg.exclude_patients}
        keep &= ~np.isin(dataset.patients.astype(str), list(excluded))
    if cfg.skip_missing:
        exists = np.array([dataset.image_path(i).exists() for i in range(len(dataset))], dtype=bool)
        if not exists.any():
            raise ConfigError("data.root", f"none of the {len(dataset)} images of the label file exist under {cfg.root}")
        if (~exists).any():
            log.info("%s: %d of %d labelled images are not on disk; training on the rest", dataset.name,
                     int((~exists).sum()), len(dataset))
        keep &= exists
    indices = np.flatnonzero(keep)
    if cfg.max_images is not None:
        indices = indices[: cfg.max_images]
    return dataset.subset(indices)


def split_train_valid(dataset: XrayDataset, cfg: DataConfig) -> dict[str, XrayDataset]:
    """Patient-level train/valid (and any other named parts), never mixing a patient's images."""
    if cfg.split == "official":
        parts = official_split(dataset)
        if "valid" not in parts:  # NIH's official split has train/test only: carve valid out of train by patient
            idx = patient_split(parts["train"].patients, {"train": 0.875, "valid": 0.125}, cfg.split_seed)
            parts = {**parts, "train": parts["train"].subset(idx["train"]), "valid": parts["train"].subset(idx["valid"])}
    else:
        assert isinstance(cfg.split, dict)  # the config refuses any other string than "official"
        if cfg.stratify:
            strata = group_column(dataset, cfg.stratify, "data.stratify").fillna("(none)").to_numpy()
            idx = stratified_patient_split(dataset.patients, strata, cfg.split, cfg.split_seed)
        else:
            idx = patient_split(dataset.patients, cfg.split, cfg.split_seed)
        parts = {name: dataset.subset(rows) for name, rows in idx.items()}
    assert_no_leakage(parts)
    for name in ("train", "valid"):
        if len(parts.get(name, ())) == 0:
            raise ConfigError("data.split", f"the {name} split is empty ({len(dataset)} images in all)")
    return parts


def group_column(dataset: Any, column: str, key: str) -> pd.Series:
    """One metadata column of a dataset as strings (NaN kept), or a config error naming ``key``.

    Dataset columns (``view``, ``sex``, ``age``, ``patient_id``) and any column joined from
    ``data.metadata`` qualify.
    """
    frame = dataset.frame
    if column not in frame.columns:
        shown = [c for c in frame.columns if c not in ("tokens", "row", "path")]
        raise ConfigError(key, f"no column {column!r} in the data; available: {', '.join(map(str, shown))} "
                               "(add a sidecar CSV with data.metadata)")
    values = frame[column]
    return pd.Series(np.where(values.isna(), None, values.astype(str)), index=frame.index, dtype=object)


def mask_labels(dataset: XrayDataset, targets: Targets, cfg: DataConfig) -> Targets:
    """Training targets with ``data.mask_labels`` applied: the named labels unknown on the matching images."""
    if not cfg.mask_labels:
        return targets
    values = targets.values.clone()
    names = targets.names
    rows_of = np.flatnonzero(targets.keep)
    for i, rule in enumerate(cfg.mask_labels):
        key = f"data.mask_labels[{i}]"
        chosen = [n for n in names if n not in rule.keep] if rule.labels == "all" else list(rule.labels)
        unknown = [n for n in chosen if n not in names]
        if unknown:
            raise ConfigError(f"{key}.labels", f"not labels of this model: {', '.join(unknown)}; labels: {', '.join(names)}")
        match = (group_column(dataset, rule.column, f"{key}.column").to_numpy()[rows_of] == str(rule.value))
        if not match.any():
            raise ConfigError(f"{key}.value", f"no training image has {rule.column} == {rule.value!r}")
        columns = [names.index(n) for n in chosen]
        values[np.ix_(np.flatnonzero(match), np.asarray(columns, dtype=np.intp))] = float("nan")
        log.info("masked %d labels on %d training images where %s == %s", len(columns), int(match.sum()),
                 rule.column, rule.value)
    return Targets(values, names, targets.keep)


def sampler_weights(dataset: XrayDataset, targets: Targets, cfg: DataConfig) -> torch.Tensor | None:
    """Per-image draw weights of ``data.sampler`` over the training images, or None (plain shuffle)."""
    kind = cfg.sampler.kind
    if kind == "none":
        return None
    rows = np.flatnonzero(targets.keep)
    if kind == "labels":
        labels = targets.values.numpy()
        positive = np.nan_to_num(labels) == 1
        n_pos = positive.sum(axis=0)
        none = ~positive.any(axis=1)
        rarity = np.where(positive, 1.0 / np.maximum(n_pos, 1), 0.0).max(axis=1)
        weights = np.where(none, 1.0 / max(int(none.sum()), 1), rarity)
        return torch.as_tensor(weights / weights.sum(), dtype=torch.double)
    assert cfg.sampler.column is not None  # the config refuses a group or weights sampler without one
    groups = group_column(dataset, cfg.sampler.column, "data.sampler.column").fillna("(none)").to_numpy()[rows]
    values, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if kind == "group":
        weights = 1.0 / counts[inverse]
    else:
        unknown = sorted(set(cfg.sampler.weights) - set(values))
        if unknown:
            raise ConfigError("data.sampler.weights", f"no training image has {cfg.sampler.column} in {unknown}; "
                                                      f"values: {', '.join(map(str, values))}")
        weights = np.array([float(cfg.sampler.weights.get(str(v), 1.0)) for v in groups])
        if weights.sum() <= 0:
            raise ConfigError("data.sampler.weights", "every training image has weight 0")
    return torch.as_tensor(weights / weights.sum(), dtype=torch.double)


def make_targets(dataset: XrayDataset, task: str, cfg: DataConfig, names: list[str] | None = None) -> Targets:
    """Targets for ``task`` from a split: label matrix, class index, or a metadata number (age)."""
    if cfg.target == "orientation":  # the class of a sample is the orientation it is shown in
        return Targets(torch.zeros(len(dataset), dtype=torch.long), list(ORIENTATIONS),
                       np.ones(len(dataset), dtype=bool))
    if task == "reconstruction":  # the film is its own target: the loader's target is a placeholder
        return Targets(torch.zeros(len(dataset)), [], np.ones(len(dataset), dtype=bool))
    if task == "regression":
        values = dataset.frame[cfg.target].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        return Targets(torch.as_tensor(values[keep], dtype=torch.float32), [cfg.target], keep)
    labels = np.asarray(dataset.labels, dtype=np.float32)
    label_names = list(dataset.label_names)
    if task == "multilabel":
        return Targets(torch.as_tensor(labels), label_names, np.ones(len(labels), dtype=bool))
    # multiclass: one positive label per row (or none, for the negative class)
    classes = names or ([cfg.negative_class] if cfg.negative_class else []) + label_names
    offset = 1 if cfg.negative_class else 0
    known = ~np.isnan(labels).any(axis=1)
    positives = np.nan_to_num(labels) == 1
    count = positives.sum(axis=1)
    keep = known & ((count == 1) | ((count == 0) & bool(cfg.negative_class)))
    dropped = int((~keep).sum())
    if dropped:
        log.warning("%s: %d rows have no single class (several or no positive labels, or unknown); left out",
                    dataset.name, dropped)
    index = np.where(count == 1, positives.argmax(axis=1) + offset, 0)[keep]
    return Targets(torch.as_tensor(index, dtype=torch.long), classes, keep)


class XrayDataModule(pl.LightningDataModule):
    """Train and validation loaders over cached splits; built once, reused by every run of ``--runs``."""

    def __init__(self, cfg: DataConfig, task: str, size: int, augment: Augment):
        super().__init__()
        self.cfg, self.task, self.size, self.augment = cfg, task, size, augment
        self.dataset = build_dataset(cfg, size)
        self.parts = split_train_valid(self.dataset, cfg)
        train_targets = make_targets(self.parts["train"], task, cfg)
        valid_targets = make_targets(self.parts["valid"], task, cfg, names=train_targets.names)
        self._draw_weights = sampler_weights(self.parts["train"], train_targets, cfg)
        train_targets = mask_labels(self.parts["train"], train_targets, cfg)
        #: validation rows that select the checkpoint and stop training (None: all of them)
        self.select_mask: torch.Tensor | None = None
        if cfg.select_on is not None:
            rows = np.flatnonzero(valid_targets.keep)
            column = group_column(self.parts["valid"], cfg.select_on.column, "data.select_on.column").to_numpy()[rows]
            mask = column == str(cfg.select_on.value)
            if not mask.any():
                raise ConfigError("data.select_on.value", f"no validation image has {cfg.select_on.column} == "
                                                          f"{cfg.select_on.value!r}")
            self.select_mask = torch.as_tensor(mask)
        self.label_names = train_targets.names
        self.train_set: ImageSet | OrientationSet = ImageSet(self.parts["train"], train_targets, size, augment if augment.active else None, cfg.cache)
        self.valid_set: ImageSet | OrientationSet = ImageSet(self.parts["valid"], valid_targets, size, None, cfg.cache)
        if cfg.target == "orientation":
            self.train_set = OrientationSet(self.train_set, every_orientation=False)
            self.valid_set = OrientationSet(self.valid_set, every_orientation=True)
        self.seed = 0
        self.sampler: EpochSampler | None = None
        self._pending_skip: tuple[int, int] | None = None

    def summary(self) -> dict[str, Any]:
        def part(ds: ImageSet | OrientationSet) -> dict[str, int]:
            return {"images": len(ds), "patients": int(len(set(ds.patients)))}

        out: dict[str, Any] = {"train": part(self.train_set), "valid": part(self.valid_set)}
        if self.select_mask is not None:
            assert self.cfg.select_on is not None  # the mask is made from it
            patients = self.valid_set.patients[self.select_mask.numpy()]
            out["selected_on"] = {"column": self.cfg.select_on.column, "value": str(self.cfg.select_on.value),
                                  "images": int(self.select_mask.sum()), "patients": int(len(set(patients)))}
        return out

    def sample_weights(self) -> torch.Tensor | None:
        if self._draw_weights is not None:
            return self._draw_weights
        if not self.cfg.oversample:
            return None
        classes = self.train_set.targets
        counts = torch.bincount(classes, minlength=len(self.label_names)).float()
        return (1.0 / counts.clamp(min=1))[classes]

    def resume_from(self, epoch: int, batches: int) -> None:
        """Skip the first ``batches`` batches of ``epoch`` (they were trained before the interruption)."""
        self._pending_skip = (epoch, batches * self.cfg.batch_size)

    def _loader(self, dataset: Dataset, sampler: Sampler | None, drop_last: bool) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(dataset, batch_size=self.cfg.batch_size, sampler=sampler, drop_last=drop_last,
                          num_workers=workers, persistent_workers=workers > 0, pin_memory=False)

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        self.sampler = EpochSampler(len(self.train_set), self.seed, True, self.sample_weights(), replicas, rank)
        if self._pending_skip is not None:
            # Set the epoch now: with workers, the loader draws indices as soon as its iterator
            # exists, which Lightning creates before it calls set_epoch on a resumed run.
            self.sampler.set_epoch(self._pending_skip[0])
            self.sampler.skip(*self._pending_skip)
            self._pending_skip = None
        drop_last = len(self.train_set) // replicas > self.cfg.batch_size
        return self._loader(self.train_set, self.sampler, drop_last)

    def val_dataloader(self) -> DataLoader:
        # Every rank scores the whole validation split, so metrics need no gathering.
        return self._loader(self.valid_set, None, False)
