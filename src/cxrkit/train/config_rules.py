"""How a bad training config is reported, and the rules that span several keys.

Types, choices and ranges of single keys are declared on the models (:mod:`.config`,
:mod:`.config_data`) and pydantic checks them; :func:`config_error` turns its report into a
:class:`ConfigError` naming the dotted key, in words a config author reads (``expected an
integer, got 2.5``). The rules here need two keys at once (task vs. target, sampler vs.
oversampling), or the registries of datasets and architectures.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ValidationError

from ..errors import CxrkitError
from .config_data import SourceConfig

__all__ = ["ConfigError", "METRIC_DIRECTIONS", "check_config", "config_error", "is_model", "strip_annotated",
           "task_metrics"]

#: how each validation metric is optimised (model selection, early stopping, tuning)
METRIC_DIRECTIONS: dict[str, Literal["minimize", "maximize"]] = {"val_loss": "minimize", "val_auc": "maximize", "val_mae": "minimize", "val_mse": "minimize",
                     "val_ssim": "maximize"}


def task_metrics(task: str) -> tuple[str, ...]:
    """The validation metrics a run of ``task`` logs, so the ones it may select or tune on."""
    return {"regression": ("val_loss", "val_mae"), "reconstruction": ("val_loss", "val_mse", "val_ssim")}.get(
        task, ("val_loss", "val_auc"))


class ConfigError(CxrkitError, ValueError):
    """A training config is malformed; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"config key {key!r}: {reason}" if key else f"config: {reason}")


# -- reporting -------------------------------------------------------------------------------------

_TYPE_WORDS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
               "string_type": "a string", "list_type": "a list", "dict_type": "a mapping"}


def strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_name(annotation: Any) -> str:
    annotation = strip_annotated(annotation)
    if typing.get_origin(annotation) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if _is_union(annotation):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    origin = typing.get_origin(annotation) or annotation
    return {type(None): "null", str: "a string", int: "an integer", float: "a number", bool: "true/false",
            list: "a list", dict: "a mapping"}.get(origin, getattr(origin, "__name__", str(origin)))


def _options(annotation: Any) -> list[Any]:
    return [a for a in typing.get_args(annotation) if a is not type(None)] if _is_union(annotation) else [annotation]


def _locate(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[str, Any, type[BaseModel] | None, bool]:
    """Walk pydantic's error location through the models: (dotted key, annotation there, the model
    holding the key, whether the location stopped at a union of several types)."""
    key = ""
    parent: type[BaseModel] | None = None
    node: Any = root  # the annotation at the location so far: a model, a union, a container or a leaf
    for item in loc:
        node = strip_annotated(node)
        if len(_options(node)) > 1:
            return key, node, parent, True
        node = strip_annotated(_options(node)[0])
        if isinstance(item, int):
            key, node = f"{key}[{item}]", (typing.get_args(node) or (Any,))[0]
        elif is_model(node):
            parent, key = node, f"{key}.{item}" if key else str(item)
            field = node.model_fields.get(str(item))
            node = field.annotation if field is not None else None
        else:  # a mapping's key
            key, node = f"{key}.{item}", (typing.get_args(node) or (Any, Any))[-1]
    options = _options(strip_annotated(node))
    return key, (strip_annotated(node) if len(options) > 1 else strip_annotated(options[0])), parent, len(options) > 1


def config_error(exc: ValidationError, root: type[BaseModel], prefix: str = "") -> ConfigError:
    """The first problem of a pydantic error about ``root``, as a :class:`ConfigError` in the
    config's own words; ``prefix`` is where ``root`` sits in the config."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):  # raised by a cross-field rule
        return cause
    key, annotation, parent, union = _locate(tuple(error["loc"]), root)
    key = f"{prefix}.{key}" if prefix else key
    value, kind, ctx = error.get("input"), error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        where = key.rsplit(".", 1)[0] if "." in key else prefix or "top level"
        names = sorted(parent.model_fields) if parent is not None else []
        return ConfigError(key, f"unknown key; {where} accepts: {', '.join(names)}")
    if union:
        return ConfigError(key, f"expected {_type_name(annotation)}, got {value!r}")
    if kind == "literal_error":
        return ConfigError(key, f"must be one of {', '.join(map(str, typing.get_args(annotation)))}; got {value!r}")
    if kind == "model_type" and is_model(annotation):
        return ConfigError(key, f"expected a mapping of {', '.join(annotation.model_fields)}, got {value!r}")
    if kind in _TYPE_WORDS:
        return ConfigError(key, f"expected {_TYPE_WORDS[kind]}, got {value!r}")
    if kind == "greater_than" and ctx.get("gt") == 0:
        return ConfigError(key, f"must be positive, got {value!r}")
    if kind == "value_error" and cause is not None:
        return ConfigError(key, str(cause))
    return ConfigError(key, f"{error['msg'][0].lower()}{error['msg'][1:]}, got {value!r}")


# -- rules ---------------------------------------------------------------------------------------

def _check_task(cfg: Any) -> None:
    metrics = task_metrics(cfg.task)
    if cfg.select.metric not in metrics:
        raise ConfigError("select.metric", f"must be one of {', '.join(metrics)}; got {cfg.select.metric!r}")
    data, loss = cfg.data, cfg.loss
    if cfg.model.freeze_backbone and not cfg.model.weights:
        raise ConfigError("model.freeze_backbone", "needs model.weights: a frozen random backbone learns nothing")
    if cfg.task == "reconstruction" and data.target != "labels":
        raise ConfigError("data.target", "a reconstruction task's target is the film itself; leave data.target unset")
    if cfg.task == "reconstruction" and cfg.model.freeze_backbone:
        raise ConfigError("model.freeze_backbone", "an autoencoder has no head to train on a frozen backbone")
    if cfg.task == "regression" and data.target != "age":
        raise ConfigError("data.target", "regression needs a numeric target such as 'age'")
    if data.target == "age" and cfg.task != "regression":
        raise ConfigError("data.target", "only regression takes target 'age'")
    if data.target == "orientation":
        if cfg.task != "multiclass":
            raise ConfigError("task", "the orientation target is a multiclass task (8 orientations)")
        if data.augment.resolved()["flip"]:
            # a random mirror image would silently mislabel the mirrored orientations
            raise ConfigError("data.augment", "orientation training cannot use flip augmentation "
                              "(set flip: false and a preset without flips)")
    if cfg.task != "multilabel" and loss.pos_weight is not None:
        raise ConfigError("loss.pos_weight", "applies to multilabel tasks only")
    if cfg.task != "multiclass" and (loss.class_weights is not None or loss.class_multiplier or data.oversample):
        key = "loss.class_weights" if loss.class_weights is not None else (
            "loss.class_multiplier" if loss.class_multiplier else "data.oversample")
        raise ConfigError(key, "applies to multiclass tasks only")
    if isinstance(loss.pos_weight, str) and loss.pos_weight != "balanced":
        raise ConfigError("loss.pos_weight", f"must be null, 'balanced' or {{label: weight}}, got {loss.pos_weight!r}")
    if isinstance(loss.class_weights, str) and loss.class_weights != "balanced":
        raise ConfigError("loss.class_weights", f"must be null, 'balanced' or a list, got {loss.class_weights!r}")
    if cfg.trainer.precision == "fp16" and cfg.trainer.accelerator == "cpu":
        raise ConfigError("trainer.precision", "fp16 runs on CUDA GPUs only; use bf16 or auto on a CPU")
    if cfg.weights_out is not None and not str(cfg.weights_out).endswith(".safetensors"):
        raise ConfigError("weights_out", f"must end in .safetensors, got {cfg.weights_out!r}")


def _check_split(data: Any) -> None:
    if isinstance(data.split, str):
        if data.split != "official":
            raise ConfigError("data.split", f"must be 'official' or a mapping like {{train: 0.8, valid: 0.2}}, "
                                            f"got {data.split!r}")
        if data.stratify:
            raise ConfigError("data.stratify", "an official split is used as published; stratify a seeded split")
        return
    if "train" not in data.split or "valid" not in data.split:
        raise ConfigError("data.split", f"needs 'train' and 'valid' parts, got {sorted(data.split)}")
    if any(v < 0 for v in data.split.values()) or data.split["valid"] <= 0 or data.split["train"] <= 0:
        raise ConfigError("data.split", f"ratios must be positive, got {data.split}")


def _check_sampling(cfg: Any) -> None:
    data = cfg.data
    sampler = data.sampler
    if sampler.kind in ("group", "weights") and not sampler.column:
        raise ConfigError("data.sampler.column", f"sampler {sampler.kind!r} needs the column to balance")
    if sampler.kind == "weights" and not sampler.weights:
        raise ConfigError("data.sampler.weights", "give a weight per value, e.g. {site-a: 1.0, site-b: 0.3}")
    if sampler.kind == "labels" and cfg.task != "multilabel":
        raise ConfigError("data.sampler.kind", "label-aware oversampling applies to multilabel tasks "
                          "(multiclass: data.oversample)")
    if sampler.kind != "none" and data.oversample:
        raise ConfigError("data.sampler", "use either data.oversample or data.sampler, not both")
    if data.oversample and cfg.loss.class_weights is not None:
        raise ConfigError("data.oversample", "use either oversampling or class weights, not both")
    for i, mask in enumerate(data.mask_labels):
        if not mask.column:
            raise ConfigError(f"data.mask_labels[{i}].column", "name the metadata column")
        if isinstance(mask.labels, str) and mask.labels != "all":
            raise ConfigError(f"data.mask_labels[{i}].labels", f"must be 'all' or a list of labels, got {mask.labels!r}")
    if data.mask_labels and cfg.task != "multilabel":
        raise ConfigError("data.mask_labels", "applies to multilabel tasks only")
    if data.select_on is not None:
        if not data.select_on.column:
            raise ConfigError("data.select_on.column", "name the metadata column of the subgroup")
        if data.target == "orientation":
            raise ConfigError("data.select_on", "not supported for the orientation target")


def _check_source(index: int, source: dict[str, Any], known: list[str], names: list[str]) -> None:
    """One ``data.sources`` entry: its keys and their types (the mapping itself is kept as written)."""
    key = f"data.sources[{index}]"
    if "dataset" not in source:
        raise ConfigError(f"{key}.dataset", "every source needs a dataset name")
    try:
        SourceConfig.model_validate(source)
    except ValidationError as exc:
        raise config_error(exc, SourceConfig, key) from None
    if source["dataset"] not in names:
        raise ConfigError(f"{key}.dataset", f"unknown dataset {source['dataset']!r}; known: {', '.join(known)}")


def _check_names(cfg: Any) -> None:
    from ..datasets import list_datasets, source_names
    from ..models import list_architectures

    data, known, names = cfg.data, list_datasets(), source_names()
    for i, source in enumerate(data.sources):
        _check_source(i, source, known, names)
        if source["dataset"] == "csv" and not source.get("label_file", data.label_file):
            raise ConfigError(f"data.sources[{i}].label_file", "the csv dataset needs the CSV file")
    if data.dataset not in names:
        raise ConfigError("data.dataset", f"unknown dataset {data.dataset!r}; choose csv, folder or one of {', '.join(known)}")
    if data.dataset == "csv" and not data.label_file and not data.sources:
        raise ConfigError("data.label_file", "the csv dataset needs the CSV file")
    if data.root is None and data.dataset != "csv" and not data.sources:
        raise ConfigError("data.root", "the image folder is required")
    if cfg.model.architecture not in list_architectures():
        raise ConfigError("model.architecture", f"unknown architecture {cfg.model.architecture!r}; "
                                                f"available: {', '.join(list_architectures())}")
    _check_autoencoder(cfg)


def _check_autoencoder(cfg: Any) -> None:
    """An autoencoder trains only on the reconstruction task, at the one size its strides round-trip."""
    from ..models import get_architecture, list_architectures

    arch = get_architecture(cfg.model.architecture)
    autoencoders = [n for n in list_architectures() if get_architecture(n).task == "reconstruction"]
    if (arch.task == "reconstruction") != (cfg.task == "reconstruction"):
        if cfg.task == "reconstruction":
            raise ConfigError("model.architecture", f"the reconstruction task needs an autoencoder ({', '.join(autoencoders)}), "
                                                    f"not {cfg.model.architecture!r}")
        raise ConfigError("task", f"{cfg.model.architecture} is an autoencoder: set task: reconstruction")
    if arch.task == "reconstruction" and cfg.model.drop_rate:
        raise ConfigError("model.drop_rate", f"{cfg.model.architecture} is an autoencoder and has no dropout; "
                                             "leave drop_rate at 0")
    if arch.task == "reconstruction" and cfg.model.input_size not in (None, arch.input_size):
        raise ConfigError("model.input_size", f"{cfg.model.architecture} takes {arch.input_size} px films only, "
                                              f"got {cfg.model.input_size}")


def check_config(cfg: Any) -> None:
    """Every rule that needs more than one key of a :class:`~cxrkit.train.config.TrainConfig`."""
    _check_task(cfg)
    _check_split(cfg.data)
    _check_sampling(cfg)
    _check_names(cfg)
