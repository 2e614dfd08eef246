"""``tune(config)``: an Optuna search over a space declared in the config's ``tune:`` section.

Every trial is a normal :func:`~cxrkit.train.fit` of the config with the trial's values set
at the same dotted paths ``--set`` uses, scored on the validation split only (the metric of
the trial's best-val-loss checkpoint, as in ``run.json``). The best trial's weight file and
card become the output; the card's ``training.tuning`` records the search.

.. code-block:: yaml

    tune:
      trials: 20
      metric: val_auc            # val_loss (min), val_auc (max) or val_mae (min)
      direction: maximize        # optional; must agree with the metric
      seed: 0                    # TPESampler seed (default: the config's seed)
      pruner: median             # optional: MedianPruner on the per-epoch validation metric (default none)
      pruner_warmup_epochs: 1    # epochs before a trial may be pruned
      space:
        optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
        data.batch_size: {type: categorical, choices: [8, 16]}
        trainer.max_epochs: {type: int, low: 2, high: 6}
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import ConfigError, TrainConfig, config_from_dict, is_setting, set_path
from .config_rules import METRIC_DIRECTIONS, task_metrics

__all__ = ["TuneSpec", "parse_tune", "tune"]

log = logging.getLogger(__name__)

TUNE_KEYS = ("trials", "metric", "direction", "seed", "space", "pruner", "pruner_warmup_epochs")
# Settings that change which images are in validation: trials must be compared on the same split.
FIXED_KEYS = ("data.dataset", "data.root", "data.label_file", "data.files", "data.csv", "data.views", "data.sources",
              "data.labels", "data.target", "data.negative_class", "data.split", "data.split_seed",
              "data.exclude_patients", "data.skip_missing", "data.max_images", "task", "output_dir", "weights_out", "name")
PARAM_KEYS = {"float": ("type", "low", "high", "log", "step"), "int": ("type", "low", "high", "log", "step"),
              "categorical": ("type", "choices")}


@dataclass
class TuneSpec:
    trials: int
    metric: str
    direction: Literal["minimize", "maximize"]
    seed: int
    space: dict[str, dict[str, Any]]
    pruner: str = "none"
    pruner_warmup_epochs: int = 1


def _number(key: str, value: Any, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ConfigError(key, f"must be {'an integer' if integer else 'a number'}, got {value!r}")
    return value


def parse_tune(cfg: TrainConfig) -> TuneSpec:
    """Validate ``cfg.tune``; every problem raises :class:`ConfigError` naming the ``tune.*`` key."""
    raw = cfg.tune
    if not raw:
        raise ConfigError("tune", "the config has no tune: section (trials, metric, space)")
    unknown = sorted(set(raw) - set(TUNE_KEYS))
    if unknown:
        raise ConfigError(f"tune.{unknown[0]}", f"unknown key; tune accepts: {', '.join(TUNE_KEYS)}")
    trials = raw.get("trials", 10)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError("tune.trials", f"must be a positive integer, got {trials!r}")
    metric = raw.get("metric", cfg.select.metric)
    allowed = task_metrics(cfg.task)
    if metric not in allowed:
        raise ConfigError("tune.metric", f"must be one of {', '.join(allowed)} for task {cfg.task}; got {metric!r}")
    direction = raw.get("direction", METRIC_DIRECTIONS[metric])
    if direction != METRIC_DIRECTIONS[metric]:
        raise ConfigError("tune.direction", f"{metric} is optimised by {METRIC_DIRECTIONS[metric]}, got {direction!r}")
    seed = raw.get("seed", cfg.seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("tune.seed", f"must be an integer, got {seed!r}")
    pruner = raw.get("pruner", "none")
    if pruner not in ("none", "median"):
        raise ConfigError("tune.pruner", f"must be none or median, got {pruner!r}")
    warmup = raw.get("pruner_warmup_epochs", 1)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError("tune.pruner_warmup_epochs", f"must be an integer >= 0, got {warmup!r}")
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError("tune.space", "needs at least one entry, e.g. {optim.lr: {type: float, low: 1e-4, high: 1e-2, log: true}}")
    for name, entry in space.items():
        key = f"tune.space.{name}"
        if not isinstance(name, str) or not is_setting(name):
            raise ConfigError(key, "is not a config setting; use its dotted key (e.g. optim.lr)")
        if name in FIXED_KEYS:
            raise ConfigError(key, "cannot be searched: every trial must be scored on the same validation images")
        if not isinstance(entry, dict):
            raise ConfigError(key, f"must be a mapping with a type, got {entry!r}")
        kind = entry.get("type")
        if kind not in PARAM_KEYS:
            raise ConfigError(key, f"type must be one of {', '.join(PARAM_KEYS)}; got {kind!r}")
        extra = sorted(set(entry) - set(PARAM_KEYS[kind]))
        if extra:
            raise ConfigError(key, f"unknown field {extra[0]!r} for type {kind}; accepted: {', '.join(PARAM_KEYS[kind])}")
        if kind == "categorical":
            choices = entry.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ConfigError(key, f"categorical needs a non-empty list of choices, got {choices!r}")
            continue
        for bound in ("low", "high"):
            if bound not in entry:
                raise ConfigError(key, f"{kind} needs low and high")
            _number(f"{key}.{bound}", entry[bound], kind == "int")
        if not entry["low"] < entry["high"]:
            raise ConfigError(key, f"low must be below high, got low={entry['low']}, high={entry['high']}")
        if entry.get("log") and entry["low"] <= 0:
            raise ConfigError(key, f"a log scale needs low > 0, got {entry['low']}")
        if entry.get("log") and entry.get("step") is not None:
            raise ConfigError(key, "step and log cannot be combined")
    return TuneSpec(trials=trials, metric=metric, direction=METRIC_DIRECTIONS[metric], seed=seed, space=space, pruner=pruner,
                    pruner_warmup_epochs=warmup)


def _suggest(trial: Any, name: str, entry: dict[str, Any]) -> Any:
    kind = entry["type"]
    if kind == "categorical":
        return trial.suggest_categorical(name, entry["choices"])
    kwargs = {"log": bool(entry.get("log", False))}
    if entry.get("step") is not None:
        kwargs["step"] = entry["step"]
    if kind == "int":
        return trial.suggest_int(name, entry["low"], entry["high"], **kwargs)
    return trial.suggest_float(name, float(entry["low"]), float(entry["high"]), **kwargs)


def _pruning_callback(trial: Any, metric: str) -> Any:
    """Reports the per-epoch validation metric to Optuna; stops the run when the pruner says so."""
    from lightning.pytorch.callbacks import Callback

    class ReportToOptuna(Callback):
        pruned = False

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking or metric not in trainer.callback_metrics:
                return
            value = float(trainer.callback_metrics[metric])
            if not math.isfinite(value):
                return
            trial.report(value, trainer.current_epoch)
            if trial.should_prune():
                self.pruned = True
                trainer.should_stop = True

    return ReportToOptuna()


def _trial_config(cfg: TrainConfig, params: dict[str, Any], out: Path) -> TrainConfig:
    raw = cfg.to_dict()
    raw["tune"] = {}
    for name, value in params.items():
        set_path(raw, name, value)
    raw["output_dir"] = str(out)
    raw["weights_out"] = None
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"tune.space.{exc.key}", f"trial value {params.get(exc.key)!r} is invalid: {exc.reason}") from None


def tune(config: TrainConfig) -> Path:
    """Run the search of ``config.tune``; write the best trial's weights + card; return the weights path.

    Trials live in ``output_dir/trials/trialN`` (each trained afresh); ``search.json`` lists every trial.
    Only validation metrics are used: the config's ``data.split`` may hold a ``test`` part, which
    no trial ever sees.
    """
    import optuna

    from .export import weights_path
    from .fit import fit, prepare_data

    spec = parse_tune(config)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    shared_data = None
    if not any(name.startswith(("data.", "model.")) for name in spec.space):
        shared_data = prepare_data(_trial_config(config, {}, output_dir))

    def objective(trial: Any) -> float:
        params = {name: _suggest(trial, name, entry) for name, entry in spec.space.items()}
        trial_dir = output_dir / "trials" / f"trial{trial.number}"
        cfg = _trial_config(config, params, trial_dir)
        log.info("trial %d: %s", trial.number, params)
        callbacks = [_pruning_callback(trial, spec.metric)] if spec.pruner == "median" else []
        weights = fit(cfg, resume=False, data=shared_data, callbacks=callbacks)
        run = json.loads((trial_dir / "run.json").read_text())  # metrics of the best-val-loss checkpoint
        value = run["metrics"].get(spec.metric, math.nan)
        trial.set_user_attr("weights", str(weights))
        trial.set_user_attr("best_epoch", run["best_epoch"])
        if callbacks and callbacks[0].pruned:
            raise optuna.TrialPruned(f"stopped after epoch {run['epochs'] - 1} by the median pruner")
        if value is None or not math.isfinite(value):
            raise optuna.TrialPruned(f"{spec.metric} is not finite on validation ({value})")
        return float(value)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=spec.pruner_warmup_epochs)
              if spec.pruner == "median" else optuna.pruners.NopPruner())
    study = optuna.create_study(direction=spec.direction, sampler=optuna.samplers.TPESampler(seed=spec.seed),
                                pruner=pruner)
    study.optimize(objective, n_trials=spec.trials, catch=())
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ConfigError("tune.metric", f"no trial produced a finite validation {spec.metric}")
    best = study.best_trial
    trials = [{"number": t.number, "params": t.params, "value": t.value, "state": t.state.name,
               "best_epoch": t.user_attrs.get("best_epoch"),
               "per_epoch": {str(k): v for k, v in sorted(t.intermediate_values.items())}} for t in study.trials]
    search = {"metric": spec.metric + " (validation)", "direction": spec.direction, "trials_requested": spec.trials,
              "sampler": f"optuna TPESampler(seed={spec.seed})", "pruner": spec.pruner, "optuna": optuna.__version__,
              "space": spec.space,
              "best_trial": best.number, "best_params": best.params, "best_value": best.value, "trials": trials}
    (output_dir / "search.json").write_text(json.dumps(search, indent=2) + "\n")

    from ..models import ModelCard

    source = Path(best.user_attrs["weights"])
    target = weights_path(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    card = ModelCard.load(source.with_suffix(".json"))
    card.weights_file = target.name
    card.training = {**card.training, "tuning": search}
    card.save(target.with_suffix(".json"))
    log.info("best trial %d (%s %.4f): %s -> %s", best.number, spec.metric, best.value, best.params, target)
    return target
