"""``cxr train``: train a model from a YAML config; writes a weight file and its model card."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from ._output import err, speaks_flags


@speaks_flags()
def train(
    config: Path = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="Training config (YAML); see configs/."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a config key, e.g. --set optim.lr=0.001 (repeatable)."),
    runs: int = typer.Option(1, "--runs", min=1, help="Train N seeds (seed, seed+1, ...) and keep the best on validation."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore existing checkpoints in output_dir instead of resuming."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress (data, epochs, metrics)."),
) -> None:
    """Train on a dataset split by patient; select checkpoint, seed and thresholds on validation only.

    Re-running the same command after an interruption resumes exactly where it stopped.
    """
    from ..train import fit, load_config

    if verbose:
        logging.getLogger("cxrkit").setLevel(logging.INFO)
    cfg = load_config(config, set_)
    err.print(f"training {cfg.name} ({cfg.task}, {cfg.model.architecture}) -> {cfg.output_dir}", highlight=False)
    weights = fit(cfg, runs=runs, resume=not fresh)
    card_path = weights.with_suffix(".json")
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        validation = card.get("metrics", {}).get("validation", {})
        summary = {k: validation[k] for k in ("auc_mean", "mae", "accuracy", "mse", "ssim") if validation.get(k) is not None}
        err.print(f"wrote {weights} (+ {card_path.name}); validation: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()), highlight=False)


@speaks_flags()
def tune(
    config: Path = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="Training config (YAML) with a tune: section."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a config key, e.g. --set tune.trials=5 (repeatable)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress (trials, epochs, metrics)."),
) -> None:
    """Optuna search over the config's tune.space; every trial scored on validation only.

    Writes the best trial's weights + card (the card's training.tuning records the search)
    and output_dir/search.json with every trial.
    """
    from ..train import load_config
    from ..train.tune import tune as run_tune

    if verbose:
        logging.getLogger("cxrkit").setLevel(logging.INFO)
    cfg = load_config(config, set_)
    err.print(f"tuning {cfg.name} ({cfg.task}, {cfg.model.architecture}) -> {cfg.output_dir}", highlight=False)
    weights = run_tune(cfg)
    card = json.loads(weights.with_suffix(".json").read_text())
    search = card["training"]["tuning"]
    err.print(f"wrote {weights} (+ {weights.with_suffix('.json').name}); best trial {search['best_trial']}: "
              f"{search['metric']} {search['best_value']:.4f} with {search['best_params']}", highlight=False)
