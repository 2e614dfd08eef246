"""Training configuration: one YAML file, ``--set key=value`` overrides, validated before any work.

A config is a tree of pydantic models (``extra="forbid"``, strict types). Every key a user
can write is a field here, so a typo (``optim.lr_rate``) fails at load time with an error
naming the key and the keys that exist, instead of silently training with a default.
Overrides use dotted paths and YAML values (``--set optim.lr=0.001 --set data.views=[PA,AP]``).
Every failure is a :class:`ConfigError` whose ``key`` is the dotted path of the bad entry.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import CxrkitError
from ..models.precision import PRECISIONS, canonical_precision
from .config_data import (
    SOURCE_KEYS,
    AugmentConfig,
    DataConfig,
    LabelMask,
    Number,
    SamplerConfig,
    Section,
    SourceConfig,
    Subgroup,
)
from .config_rules import (
    ConfigError,
    check_config,
    config_error,
    is_model,
    strip_annotated,
)

__all__ = [
    "ConfigError",
    "ModelConfig",
    "DataConfig",
    "AugmentConfig",
    "SamplerConfig",
    "LabelMask",
    "Subgroup",
    "SourceConfig",
    "LossConfig",
    "OptimConfig",
    "TrainerConfig",
    "SelectConfig",
    "TrainConfig",
    "SOURCE_KEYS",
    "load_config",
    "apply_overrides",
    "config_from_dict",
    "is_setting",
]


Positive = Annotated[Number, Field(gt=0)]


class ModelConfig(Section):
    """What to train: an architecture from scratch, or registered/file weights fine-tuned with a new head."""

    architecture: str = "densenet121"
    weights: str | None = None  # registry id, tag or .safetensors path to start from
    input_size: Annotated[int, Field(gt=0)] | None = None  # default: the architecture's
    drop_rate: Annotated[Number, Field(ge=0, lt=1)] = 0.0  # training dropout (cxrkit.models.create)
    # train the head only, the backbone (weights and BatchNorm statistics) frozen: a linear
    # probe, which generalises better than fine-tuning when there are only ~1,000 images
    freeze_backbone: bool = False


class LossConfig(Section):
    """Loss of the task and its imbalance handling."""

    pos_weight: str | dict[str, Number] | None = None  # multilabel: null, "balanced" or {label: weight}
    pos_weight_max: Number = 50.0
    class_weights: str | list[Number] | None = None  # multiclass: null, "balanced" or a list
    class_multiplier: list[Number] | None = None  # multiclass: times the class weights (covid-cxr)
    regression: Literal["l1", "mse"] = "l1"
    reconstruction: Literal["mse", "l1"] = "mse"  # per pixel, on the [-1024, 1024] scale


class OptimConfig(Section):
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: Positive = 1e-3
    momentum: Number = 0.9
    weight_decay: Number = 1e-4
    betas: Annotated[list[Number], Field(min_length=2, max_length=2)] = Field(default_factory=lambda: [0.9, 0.999])
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"
    plateau_factor: Annotated[Number, Field(gt=0, lt=1)] = 0.1
    plateau_patience: int = 0
    min_lr: Number = 0.0
    warmup_epochs: int = 0


class TrainerConfig(Section):
    """Passed to Lightning (devices/num_nodes/strategy give DDP on GPUs or CPU processes)."""

    max_epochs: Annotated[int, Field(gt=0)] = 100
    max_time_minutes: Number | None = None
    early_stop_patience: int | None = 3  # epochs without a better val_loss; null = off
    # one of cxrkit.models.precision.PRECISIONS; Lightning's names (bf16-mixed, 32-true, ...) are read as aliases
    precision: str = "bf16"
    channels_last: bool = True
    accelerator: str = "auto"
    devices: int | str | list[int] = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_threads: int | None = None  # torch intra-op threads for CPU training
    gradient_clip: Number | None = None
    accumulate_grad_batches: int = 1
    checkpoint_every_n_steps: int | None = None  # also save last.ckpt every N steps (exact resume mid-epoch)
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    log_every_n_steps: int = 10
    deterministic: bool | Literal["warn"] = "warn"  # deterministic where torch can be, warn elsewhere
    progress: bool = False

    @field_validator("precision", mode="before")
    @classmethod
    def _one_vocabulary(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # Lightning's 32 and 16, which YAML reads as numbers
        if not isinstance(value, str):
            return value
        try:
            return canonical_precision(value)
        except CxrkitError:
            raise ValueError(f"must be one of {', '.join(PRECISIONS)} (Lightning's bf16-mixed, 16-mixed and "
                             f"32-true are read as bf16, fp16 and fp32); got {value!r}") from None


class SelectConfig(Section):
    """Model selection and thresholds, always on validation data."""

    metric: str = "val_loss"  # val_loss (min) or val_auc (max), val_mae (min) for regression, val_ssim (max) for reconstruction
    threshold_method: Literal["youden", "f1", "ppv80"] = "youden"
    bootstrap: int = 1000
    # metadata columns whose groups get their own validation metrics in the card
    # (the select_on and stratify columns are added); "age" is cut into age_bands
    groups: list[str] = Field(default_factory=lambda: ["view", "sex", "age"])
    age_bands: list[Number] = Field(default_factory=lambda: [0.0, 40.0, 60.0])
    blur_sigma: Annotated[Number, Field(gt=0)] = 4.0  # reconstruction: Gaussian sigma (input pixels) of the blurred-input baseline
    caveat: str = ""  # appended to the card's how_far_to_trust sentence (what the data cannot show)


class TrainConfig(Section):
    name: str = "model"
    task: Literal["multilabel", "multiclass", "regression", "reconstruction"] = "multilabel"
    seed: int = 0
    output_dir: str = "runs/model"
    weights_out: str | None = None  # final .safetensors; default output_dir/<name>.safetensors
    # float16 halves the file; the card's metrics are measured on the stored weights
    weights_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    description: str = ""
    license: str | None = None
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    tune: dict[str, Any] = Field(default_factory=dict)  # `cxr tune` search (see cxrkit.train.tune); ignored by train

    @model_validator(mode="after")
    def _cross_field_rules(self) -> TrainConfig:
        check_config(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


# -- loading ------------------------------------------------------------------------------------

def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from plain data (as read from YAML)."""
    if not isinstance(data, dict):
        raise ConfigError("", f"a config must be a mapping, got {type(data).__name__}")
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, TrainConfig) from None


def is_setting(dotted: str) -> bool:
    """Whether ``dotted`` names a leaf setting of :class:`TrainConfig` (e.g. ``optim.lr``), not a section."""
    node: Any = TrainConfig
    for part in dotted.split("."):
        if not is_model(node) or part not in node.model_fields or part == "tune":
            return False
        node = strip_annotated(node.model_fields[part].annotation)
    return not is_model(node)


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
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
            raise ConfigError(key, f"value {raw!r} is not valid YAML ({' '.join(str(exc).split())})") from None
        set_path(data, key, value)
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
            raise ConfigError("", f"{path} is not valid YAML ({' '.join(str(exc).split())})") from None  # one line
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("", f"{path} must hold a mapping at the top level")
        data = loaded
    return config_from_dict(apply_overrides(data, overrides))

