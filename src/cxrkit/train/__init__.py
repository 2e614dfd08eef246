"""Training: a YAML config in, a weight file with its model card out, selected on validation only.

>>> from cxrkit.train import load_config, fit
>>> weights = fit(load_config("configs/chexnet-nih.yaml", ["trainer.max_epochs=1"]))

Needs ``lightning``, ``pyyaml`` and ``scikit-learn`` (the ``train`` extra).
"""

from .augment import PRESETS, Augment
from .config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
)
from .data import EpochSampler, XrayDataModule
from .fit import RunResult, build_model, fit, predict_logits, prepare_data
from .module import CxrModule, TaskLoss, masked_bce

__all__ = [
    "Augment",
    "ConfigError",
    "CxrModule",
    "EpochSampler",
    "PRESETS",
    "RunResult",
    "TaskLoss",
    "TrainConfig",
    "XrayDataModule",
    "apply_overrides",
    "build_model",
    "config_from_dict",
    "fit",
    "load_config",
    "masked_bce",
    "predict_logits",
    "prepare_data",
]
