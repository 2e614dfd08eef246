"""Training configuration: one YAML file, ``--set key=value`` overrides, validated before any work.

A config is a tree of small dataclasses. Every key a user can write is a field here, so
a typo (``optim.lr_rate``) fails at load time with an error naming the key and the keys
that exist, instead of silently training with a default. Overrides use dotted paths and
YAML values (``--set optim.lr=0.001 --set data.views=[PA,AP]``).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import CxrkitError

__all__ = [
    "ConfigError",
    "ModelConfig",
    "DataConfig",
    "SamplerConfig",
    "LabelMask",
    "Subgroup",
    "LossConfig",
    "OptimConfig",
    "TrainerConfig",
    "SelectConfig",
    "TrainConfig",
    "load_config",
    "apply_overrides",
    "config_from_dict",
]


class ConfigError(CxrkitError, ValueError):
    """A training config is malformed; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"config key {key!r}: {reason}" if key else f"config: {reason}")


TASKS = ("multilabel", "multiclass", "regression")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("plateau", "cosine", "none")
THRESHOLD_METHODS = ("youden", "f1", "ppv80")
#: Preset values; a key set explicitly in the config wins over its preset.
AUGMENT_PRESET_VALUES: dict[str, dict[str, float | bool]] = {
    "none": {},
    # reproduce-chexnet: random horizontal flip only (images are resized to the input size).
    "chexnet": {"flip": True},
    # TorchXRayVision's training recipe: affine rotate +-45 deg, translate 15 %, scale 10 %.
    "xrv": {"rotate": 45.0, "translate": 0.15, "scale": 0.10},
    # augmented-chest-xray's "advanced" pipeline: flip, shifts, rotations, crops, scaling,
    # perspective, brightness and contrast (values are cxrkit's, not copied from theirs).
    "augmented": {
        "flip": True, "rotate": 10.0, "translate": 0.10, "scale": 0.10, "crop_scale": 0.80,
        "perspective": 0.10, "brightness": 0.10, "contrast": 0.10,
    },
}
AUGMENT_PRESETS = tuple(AUGMENT_PRESET_VALUES)
SAMPLERS = ("none", "group", "weights", "labels")
SOURCE_KEYS = ("dataset", "root", "label_file", "files", "csv", "views")


@dataclass
class ModelConfig:
    """What to train: an architecture from scratch, or registered/file weights fine-tuned with a new head."""

    architecture: str = "densenet121"
    weights: str | None = None  # registry id, tag or .safetensors path to start from
    input_size: int | None = None  # default: the architecture's
    drop_rate: float = 0.0
    # train the head only, the backbone (weights and BatchNorm statistics) frozen: a linear
    # probe, which generalises better than fine-tuning when there are only ~1,000 images
    freeze_backbone: bool = False


@dataclass
class AugmentConfig:
    """Random training augmentation; a preset fills the values you do not set yourself."""

    preset: str = "none"
    rotate: float | None = None  # degrees, +-
    translate: float | None = None  # fraction of the side
    scale: float | None = None  # +- fraction
    flip: bool | None = None  # horizontal flip with p=0.5
    crop_scale: float | None = None  # RandomResizedCrop lower area bound (1.0 = off)
    brightness: float | None = None  # +- fraction of the range
    contrast: float | None = None
    perspective: float | None = None  # distortion scale (0 = off)

    def resolved(self) -> dict[str, float | bool]:
        """The effective augmentation values: preset defaults overridden by explicit keys.

        Lives with the config (not in :mod:`.augment`) so validating a config never needs the
        transforms, and the two modules do not import each other.
        """
        values: dict[str, float | bool] = {"rotate": 0.0, "translate": 0.0, "scale": 0.0, "flip": False,
                                           "crop_scale": 1.0, "brightness": 0.0, "contrast": 0.0, "perspective": 0.0}
        values.update(AUGMENT_PRESET_VALUES[self.preset])
        for name in values:
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        return values


@dataclass
class SamplerConfig:
    """How the training sampler draws images (with replacement unless ``kind`` is none).

    ``group``: every value of ``column`` equally often (group-balanced, so a large selected
    subgroup no longer dominates); ``weights``: each value of ``column`` drawn in proportion
    to ``weights[value]`` times its size (down-weighting, 0 drops it); ``labels``: label-aware
    oversampling, each image weighted by its rarest positive label (images with no
    positive count as one more class).
    """

    kind: str = "none"  # none, group, weights, labels
    column: str | None = None
    weights: dict[str, float] = field(default_factory=dict)


@dataclass
class LabelMask:
    """Training labels set unknown (NaN: no loss, no gradient) on the images where ``column == value``.

    For a subgroup whose label *presence* was decided by how it was drawn (a collection
    that kept only Pneumonia or No Finding films), the confounded labels are better unknown
    than taught. Validation labels are never masked, so the metrics stay honest.
    """

    column: str = ""
    value: str = ""
    labels: list[str] | str = "all"  # label names, or "all"
    keep: list[str] = field(default_factory=list)  # labels exempt from "all"


@dataclass
class Subgroup:
    """One value of one metadata column, e.g. ``{column: source, value: reproduce-chexnet-starter}``."""

    column: str = ""
    value: str = ""


@dataclass
class DataConfig:
    """Where the images and labels come from and how they are split and served."""

    dataset: str = "nih"  # a registered dataset name, "csv" or "folder"
    root: str | None = None
    label_file: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    csv: dict[str, Any] = field(default_factory=dict)  # csv_dataset keyword arguments
    views: list[str] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)  # several datasets merged (keys as above)
    labels: list[str] | None = None  # head labels in order; default: the dataset's (union when merged)
    target: str = "labels"  # "labels"; "age" for regression; "orientation" (synthetic, multiclass)
    negative_class: str | None = None  # multiclass: name of the class of rows with no positive label
    split: dict[str, float] | str = field(default_factory=lambda: {"train": 0.8, "valid": 0.2})
    split_seed: int = 0
    exclude_patients: list[str] = field(default_factory=list)
    skip_missing: bool = True  # drop label rows whose image is not on disk (partial downloads)
    max_images: int | None = None
    cache: bool = True  # decode + resize every image once and keep it in memory (float16)
    batch_size: int = 16
    num_workers: int = 0
    oversample: bool = False  # multiclass: sample classes equally often (with replacement)
    metadata: list[str] = field(default_factory=list)  # sidecar CSVs joined by image file name (site, source, scanner)
    stratify: str | None = None  # keep each value of this column's share in every split part
    select_on: Subgroup | None = None  # validation subgroup that picks the checkpoint and stops training
    mask_labels: list[LabelMask] = field(default_factory=list)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class LossConfig:
    """Loss of the task and its imbalance handling."""

    pos_weight: str | dict[str, float] | None = None  # multilabel: null, "balanced" or {label: weight}
    pos_weight_max: float = 50.0
    class_weights: str | list[float] | None = None  # multiclass: null, "balanced" or a list
    class_multiplier: list[float] | None = None  # multiclass: times the class weights (covid-cxr)
    regression: str = "l1"  # l1 or mse


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    scheduler: str = "plateau"
    plateau_factor: float = 0.1
    plateau_patience: int = 0
    min_lr: float = 0.0
    warmup_epochs: int = 0


@dataclass
class TrainerConfig:
    """Passed to Lightning (devices/num_nodes/strategy give DDP on GPUs or CPU processes)."""

    max_epochs: int = 100
    max_time_minutes: float | None = None
    early_stop_patience: int | None = 3  # epochs without a better val_loss; null = off
    precision: str = "bf16-mixed"
    channels_last: bool = True
    accelerator: str = "auto"
    devices: int | str | list[int] = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_threads: int | None = None  # torch intra-op threads for CPU training
    gradient_clip: float | None = None
    accumulate_grad_batches: int = 1
    checkpoint_every_n_steps: int | None = None  # also save last.ckpt every N steps (exact resume mid-epoch)
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    log_every_n_steps: int = 10
    deterministic: bool | str = "warn"  # true, false or "warn" (deterministic where torch can be, warn elsewhere)
    progress: bool = False


@dataclass
class SelectConfig:
    """Model selection and thresholds, always on validation data."""

    metric: str = "val_loss"  # val_loss (min) or val_auc (max), val_mae (min) for regression
    threshold_method: str = "youden"
    bootstrap: int = 1000
    # metadata columns whose groups get their own validation metrics in the card
    # (the select_on and stratify columns are added); "age" is cut into age_bands
    groups: list[str] = field(default_factory=lambda: ["view", "sex", "age"])
    age_bands: list[float] = field(default_factory=lambda: [0.0, 40.0, 60.0])
    caveat: str = ""  # appended to the card's how_far_to_trust sentence (what the data cannot show)


@dataclass
class TrainConfig:
    name: str = "model"
    task: str = "multilabel"
    seed: int = 0
    output_dir: str = "runs/model"
    weights_out: str | None = None  # final .safetensors; default output_dir/<name>.safetensors
    weights_dtype: str = "float32"  # float16 halves the file; the card's metrics are measured on the stored weights
    description: str = ""
    license: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    tune: dict[str, Any] = field(default_factory=dict)  # `cxr tune` search (see cxrkit.train.tune); ignored by train

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        """Cross-field checks; raises :class:`ConfigError` naming the key."""
        _choice("task", self.task, TASKS)
        _choice("optim.name", self.optim.name, OPTIMIZERS)
        _choice("optim.scheduler", self.optim.scheduler, SCHEDULERS)
        _choice("select.threshold_method", self.select.threshold_method, THRESHOLD_METHODS)
        _choice("data.augment.preset", self.data.augment.preset, AUGMENT_PRESETS)
        _choice("loss.regression", self.loss.regression, ("l1", "mse"))
        metrics = {"regression": ("val_loss", "val_mae")}.get(self.task, ("val_loss", "val_auc"))
        _choice("select.metric", self.select.metric, metrics)
        _positive("optim.lr", self.optim.lr)
        _positive("data.batch_size", self.data.batch_size)
        _positive("trainer.max_epochs", self.trainer.max_epochs)
        if self.model.input_size is not None:
            _positive("model.input_size", self.model.input_size)
        if not 0.0 < self.optim.plateau_factor < 1.0:
            raise ConfigError("optim.plateau_factor", f"must lie in (0, 1), got {self.optim.plateau_factor}")
        if self.trainer.deterministic not in (True, False, "warn"):
            raise ConfigError("trainer.deterministic", f"must be true, false or warn, got {self.trainer.deterministic!r}")
        if len(self.optim.betas) != 2:
            raise ConfigError("optim.betas", f"needs two values, got {self.optim.betas}")
        if isinstance(self.data.split, str):
            if self.data.split != "official":
                raise ConfigError("data.split", f"must be 'official' or a mapping like {{train: 0.8, valid: 0.2}}, got {self.data.split!r}")
        else:
            if "train" not in self.data.split or "valid" not in self.data.split:
                raise ConfigError("data.split", f"needs 'train' and 'valid' parts, got {sorted(self.data.split)}")
            if any(v < 0 for v in self.data.split.values()) or self.data.split["valid"] <= 0 or self.data.split["train"] <= 0:
                raise ConfigError("data.split", f"ratios must be positive, got {self.data.split}")
        if self.model.freeze_backbone and not self.model.weights:
            raise ConfigError("model.freeze_backbone", "needs model.weights: a frozen random backbone learns nothing")
        if self.data.target not in ("labels", "age", "orientation"):
            raise ConfigError("data.target", f"must be 'labels', 'age' or 'orientation', got {self.data.target!r}")
        if self.task == "regression" and self.data.target != "age":
            raise ConfigError("data.target", "regression needs a numeric target such as 'age'")
        if self.data.target == "age" and self.task != "regression":
            raise ConfigError("data.target", "only regression takes target 'age'")
        if self.data.target == "orientation":
            if self.task != "multiclass":
                raise ConfigError("task", "the orientation target is a multiclass task (8 orientations)")
            if self.data.augment.resolved()["flip"]:
                # a random mirror image would silently mislabel the mirrored orientations
                raise ConfigError("data.augment", "orientation training cannot use flip augmentation "
                                  "(set flip: false and a preset without flips)")
        if self.task != "multilabel" and self.loss.pos_weight is not None:
            raise ConfigError("loss.pos_weight", "applies to multilabel tasks only")
        if self.task != "multiclass" and (self.loss.class_weights is not None or self.loss.class_multiplier or self.data.oversample):
            key = "loss.class_weights" if self.loss.class_weights is not None else (
                "loss.class_multiplier" if self.loss.class_multiplier else "data.oversample")
            raise ConfigError(key, "applies to multiclass tasks only")
        if isinstance(self.loss.pos_weight, str) and self.loss.pos_weight != "balanced":
            raise ConfigError("loss.pos_weight", f"must be null, 'balanced' or {{label: weight}}, got {self.loss.pos_weight!r}")
        if isinstance(self.loss.class_weights, str) and self.loss.class_weights != "balanced":
            raise ConfigError("loss.class_weights", f"must be null, 'balanced' or a list, got {self.loss.class_weights!r}")
        _choice("data.sampler.kind", self.data.sampler.kind, SAMPLERS)
        if self.data.sampler.kind in ("group", "weights") and not self.data.sampler.column:
            raise ConfigError("data.sampler.column", f"sampler {self.data.sampler.kind!r} needs the column to balance")
        if self.data.sampler.kind == "weights" and not self.data.sampler.weights:
            raise ConfigError("data.sampler.weights", "give a weight per value, e.g. {site-a: 1.0, site-b: 0.3}")
        if any(w < 0 for w in self.data.sampler.weights.values()):
            raise ConfigError("data.sampler.weights", "weights must be non-negative")
        if self.data.sampler.kind == "labels" and self.task != "multilabel":
            raise ConfigError("data.sampler.kind", "label-aware oversampling applies to multilabel tasks "
                              "(multiclass: data.oversample)")
        if self.data.sampler.kind != "none" and self.data.oversample:
            raise ConfigError("data.sampler", "use either data.oversample or data.sampler, not both")
        for i, mask in enumerate(self.data.mask_labels):
            if not mask.column:
                raise ConfigError(f"data.mask_labels[{i}].column", "name the metadata column")
            if isinstance(mask.labels, str) and mask.labels != "all":
                raise ConfigError(f"data.mask_labels[{i}].labels", f"must be 'all' or a list of labels, got {mask.labels!r}")
        if self.data.mask_labels and self.task != "multilabel":
            raise ConfigError("data.mask_labels", "applies to multilabel tasks only")
        if self.data.select_on is not None:
            if not self.data.select_on.column:
                raise ConfigError("data.select_on.column", "name the metadata column of the subgroup")
            if self.data.target == "orientation":
                raise ConfigError("data.select_on", "not supported for the orientation target")
        if self.data.split == "official" and self.data.stratify:
            raise ConfigError("data.stratify", "an official split is used as published; stratify a seeded split")
        if self.data.oversample and self.loss.class_weights is not None:
            raise ConfigError("data.oversample", "use either oversampling or class weights, not both")
        _choice("weights_dtype", self.weights_dtype, ("float32", "float16", "bfloat16"))
        if self.weights_out is not None and not str(self.weights_out).endswith(".safetensors"):
            raise ConfigError("weights_out", f"must end in .safetensors, got {self.weights_out!r}")
        for i, source in enumerate(self.data.sources):
            unknown = sorted(set(source) - set(SOURCE_KEYS))
            if unknown:
                raise ConfigError(f"data.sources[{i}].{unknown[0]}", f"unknown key; a source accepts: {', '.join(SOURCE_KEYS)}")
            if "dataset" not in source:
                raise ConfigError(f"data.sources[{i}].dataset", "every source needs a dataset name")
            from ..datasets import list_datasets

            if source["dataset"] not in (*list_datasets(), "csv", "folder"):
                raise ConfigError(f"data.sources[{i}].dataset", f"unknown dataset {source['dataset']!r}; known: {', '.join(list_datasets())}")
        if self.data.dataset not in ("csv", "folder"):
            from ..datasets import list_datasets

            if self.data.dataset not in list_datasets():
                raise ConfigError("data.dataset", f"unknown dataset {self.data.dataset!r}; choose csv, folder or one of {', '.join(list_datasets())}")
        if self.data.root is None and self.data.dataset != "csv" and not self.data.sources:
            raise ConfigError("data.root", "the image folder is required")
        from ..models import list_architectures

        if self.model.architecture not in list_architectures():
            raise ConfigError("model.architecture", f"unknown architecture {self.model.architecture!r}; available: {', '.join(list_architectures())}")
        return self


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}; got {value!r}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(key, f"must be positive, got {value!r}")


# -- parsing -------------------------------------------------------------------------------------


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """Coerce ``value`` to ``annotation`` where that is lossless (int -> float), else raise."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(annotation):
            try:
                return _check_type(key, value, option)
            except ConfigError as exc:
                errors.append(exc.reason)
        raise ConfigError(key, f"expected {_type_name(annotation)}, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(key, f"expected null, got {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping of {', '.join(f.name for f in dataclasses.fields(annotation))}, got {value!r}")
        return _build(annotation, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {value!r}")
        (inner,) = typing.get_args(annotation) or (Any,)
        return [_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {value!r}")
        _, inner = typing.get_args(annotation) or (Any, Any)
        return {str(k): _check_type(f"{key}.{k}", v, inner) for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(key, f"expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and ("exclude_patients" in key or key.endswith(".value")):
            return str(value)
        raise ConfigError(key, f"expected a string, got {value!r}")
    raise ConfigError(key, f"unsupported annotation {annotation!r}")


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if args:
        return " or ".join(_type_name(a) for a in args)
    return {type(None): "null", str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(path, f"unknown key; {prefix or 'top level'} accepts: {', '.join(sorted(names))}")
        kwargs[key] = _check_type(path, value, hints[key])
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from plain data (as read from YAML)."""
    if not isinstance(data, dict):
        raise ConfigError("", f"a config must be a mapping, got {type(data).__name__}")
    return _build(TrainConfig, data).validate()


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(dotted, f"{part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``key=value`` strings (values parsed as YAML) to a raw config mapping."""
    data = copy.deepcopy(data)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(item, "an override must look like key=value, e.g. optim.lr=0.001")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(item, "empty key in override")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(key, f"value {raw!r} is not valid YAML ({exc})") from None
        _set_path(data, key, value)
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config, apply ``--set`` overrides, and validate the result."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("", f"config file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ConfigError("", f"{path} is not valid YAML ({exc})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("", f"{path} must hold a mapping at the top level")
        data = loaded
    return config_from_dict(apply_overrides(data, overrides))
