"""``cxr tune``: a seeded Optuna search, every trial scored on validation, the best trial's model out."""

from __future__ import annotations

import json

import pytest
import typer
import yaml
from typer.testing import CliRunner

from cxrkit.train import ConfigError, config_from_dict
from cxrkit.train.tune import parse_tune, tune

from .conftest import tiny_config

SPACE = {"optim.lr": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True},
         "optim.weight_decay": {"type": "categorical", "choices": [0.0, 1e-4]}}


def _config(root, tmp, trials=3, metric="val_loss", space=SPACE, **extra):
    raw = tiny_config(root, tmp, trainer={"max_epochs": 1}, select={"bootstrap": 5},
                      tune={"trials": trials, "metric": metric, "seed": 7, "space": space}, **extra)
    return config_from_dict(raw)


def test_tune_keeps_the_trial_with_the_best_validation_metric(tiny_csv, tmp_path):
    cfg = _config(tiny_csv, tmp_path, metric="val_auc")
    weights = tune(cfg)
    assert weights == tmp_path / "run" / "test.tiny.safetensors" and weights.is_file()
    card = json.loads(weights.with_suffix(".json").read_text())
    search = card["training"]["tuning"]
    assert search["metric"] == "val_auc (validation)" and search["direction"] == "maximize"
    assert search["space"] == SPACE and len(search["trials"]) == 3
    complete = [t for t in search["trials"] if t["state"] == "COMPLETE"]
    best = max(complete, key=lambda t: t["value"])
    assert search["best_trial"] == best["number"] and search["best_params"] == best["params"]
    # Each trial's value is its own validation metric (run.json of its best-val-loss checkpoint).
    for t in complete:
        run = json.loads((tmp_path / "run" / "trials" / f"trial{t['number']}" / "run.json").read_text())
        assert run["metrics"]["val_auc"] == pytest.approx(t["value"])
    # The output is the best trial's model: same tensors (sha256), its own config values.
    trial_card = json.loads((tmp_path / "run" / "trials" / f"trial{best['number']}" / "test.tiny.json").read_text())
    assert card["sha256"] == trial_card["sha256"] and card["weights_file"] == weights.name
    assert card["provenance"]["config"]["optim"]["lr"] == pytest.approx(best["params"]["optim.lr"])
    assert card["metrics"]["validation"]["thresholds_chosen_on"] == "validation"
    assert json.loads((tmp_path / "run" / "search.json").read_text())["best_trial"] == best["number"]
    from cxrkit import models

    assert models.create(str(weights)).card.training["tuning"]["best_params"] == best["params"]


def test_same_seed_gives_the_same_trials(tiny_csv, tmp_path):
    space = {"optim.lr": SPACE["optim.lr"], "data.batch_size": {"type": "categorical", "choices": [4, 8]}}
    params = []
    for name in ("a", "b"):
        cfg = _config(tiny_csv, tmp_path / name, trials=2, space=space)
        card = json.loads(tune(cfg).with_suffix(".json").read_text())
        params.append([(t["params"], t["value"]) for t in card["training"]["tuning"]["trials"]])
    assert [p for p, _ in params[0]] == [p for p, _ in params[1]]
    assert [v for _, v in params[0]] == pytest.approx([v for _, v in params[1]])


@pytest.mark.parametrize("space, key", [
    ({"optim.lrate": {"type": "float", "low": 0.001, "high": 0.1}}, "tune.space.optim.lrate"),
    ({"optim": {"type": "float", "low": 0.001, "high": 0.1}}, "tune.space.optim"),
    ({"optim.lr": {"type": "uniform", "low": 0.001, "high": 0.1}}, "tune.space.optim.lr"),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 0.01}}, "tune.space.optim.lr"),
    ({"optim.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "tune.space.optim.lr"),
    ({"data.batch_size": {"type": "categorical", "choices": []}}, "tune.space.data.batch_size"),
    ({"data.batch_size": {"type": "int", "low": 2, "hi": 8}}, "tune.space.data.batch_size"),
    ({}, "tune.space"),
    ({"data.split_seed": {"type": "int", "low": 0, "high": 3}}, "tune.space.data.split_seed"),
    ({"optim.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True, "step": 0.01}}, "tune.space.optim.lr"),
])
def test_invalid_space_entries_name_the_key(tiny_csv, tmp_path, space, key):
    with pytest.raises(ConfigError) as info:
        parse_tune(_config(tiny_csv, tmp_path, space=space))
    assert info.value.key == key and key in str(info.value)


def test_invalid_tune_settings(tiny_csv, tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_tune(_config(tiny_csv, tmp_path, metric="test_auc"))
    assert info.value.key == "tune.metric"
    raw = tiny_config(tiny_csv, tmp_path, tune={"metric": "val_auc", "direction": "minimize", "space": SPACE})
    with pytest.raises(ConfigError) as info:
        parse_tune(config_from_dict(raw))
    assert info.value.key == "tune.direction"
    raw = tiny_config(tiny_csv, tmp_path, tune={"pruner": "hyperband", "space": SPACE})
    with pytest.raises(ConfigError) as info:
        parse_tune(config_from_dict(raw))
    assert info.value.key == "tune.pruner"
    with pytest.raises(ConfigError) as info:
        parse_tune(config_from_dict(tiny_config(tiny_csv, tmp_path, tune={"trails": 3, "space": SPACE})))
    assert info.value.key == "tune.trails"
    # A value the space allows but the config rejects names the tuned key before any training.
    with pytest.raises(ConfigError) as info:
        tune(_config(tiny_csv, tmp_path, trials=1, space={"data.batch_size": {"type": "int", "low": -2, "high": -1}}))
    assert info.value.key.startswith("tune.space.data.batch_size")


def test_example_config_tune_section_is_valid():
    from pathlib import Path

    from cxrkit.train import load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "covid-binary.yaml"
    spec = parse_tune(load_config(path, ["data.root=."]))
    assert spec.metric == "val_auc" and spec.direction == "maximize" and "optim.lr" in spec.space


def test_cli_tune(tiny_csv, tmp_path):
    from cxrkit.cli.train import tune as tune_cmd

    app = typer.Typer()
    app.command()(tune_cmd)
    raw = tiny_config(tiny_csv, tmp_path, trainer={"max_epochs": 1}, select={"bootstrap": 5},
                      tune={"trials": 1, "space": {"optim.lr": {"type": "float", "low": 0.001, "high": 0.01}}})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "tuned.safetensors"
    result = CliRunner().invoke(app, ["--config", str(path), "--set", "tune.trials=2", "--set", f"weights_out={out}"])
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert len(card["training"]["tuning"]["trials"]) == 2


def test_median_pruner_stops_trials_and_never_selects_them(tiny_csv, tmp_path, monkeypatch):
    import optuna

    class PruneLaterTrials(optuna.pruners.BasePruner):
        """Deterministic stand-in for MedianPruner: trials after the first stop at their first report."""

        def prune(self, study, trial):
            return trial.number > 0

    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **kwargs: PruneLaterTrials())
    raw = tiny_config(tiny_csv, tmp_path, trainer={"max_epochs": 3, "early_stop_patience": None},
                      select={"bootstrap": 5},
                      tune={"trials": 2, "metric": "val_loss", "seed": 1, "pruner": "median", "space": SPACE})
    card = json.loads(tune(config_from_dict(raw)).with_suffix(".json").read_text())
    trials = card["training"]["tuning"]["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE", "PRUNED"]
    assert len(trials[0]["per_epoch"]) == 3 and len(trials[1]["per_epoch"]) == 1
    assert card["training"]["tuning"]["best_trial"] == 0 and card["training"]["tuning"]["pruner"] == "median"
    run1 = json.loads((tmp_path / "run" / "trials" / "trial1" / "run.json").read_text())
    assert run1["epochs"] == 1  # stopped by the pruner after its first epoch


def test_real_median_pruner_runs(tiny_csv, tmp_path):
    raw = tiny_config(tiny_csv, tmp_path, trainer={"max_epochs": 2}, select={"bootstrap": 5},
                      tune={"trials": 3, "metric": "val_loss", "pruner": "median", "pruner_warmup_epochs": 0,
                            "space": SPACE})
    search = json.loads(tune(config_from_dict(raw)).with_suffix(".json").read_text())["training"]["tuning"]
    assert all(t["state"] in ("COMPLETE", "PRUNED") and t["per_epoch"] for t in search["trials"])
    assert search["trials"][search["best_trial"]]["state"] == "COMPLETE"
