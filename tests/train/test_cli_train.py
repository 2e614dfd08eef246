"""``cxr train`` (the typer function the CLI registers): config + --set overrides + --runs."""

from __future__ import annotations

import json

import typer
import yaml
from typer.testing import CliRunner

from cxrkit.cli.train import train

from .conftest import tiny_config


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(train)
    return app


def test_cli_train_with_overrides(tiny_csv, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_csv, tmp_path)))
    out = tmp_path / "cli.safetensors"
    result = CliRunner().invoke(_app(), ["--config", str(path), "--set", "trainer.max_epochs=1",
                                         "--set", f"weights_out={out}", "--runs", "1"])
    assert result.exit_code == 0, result.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["provenance"]["config"]["trainer"]["max_epochs"] == 1
    assert card["training"]["epochs_run"] == 1


def test_cli_train_bad_key_is_a_config_error(tiny_csv, tmp_path):
    from cxrkit.train import ConfigError

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_csv, tmp_path)))
    result = CliRunner().invoke(_app(), ["--config", str(path), "--set", "optim.momentun=0.9"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError) and result.exception.key == "optim.momentun"
