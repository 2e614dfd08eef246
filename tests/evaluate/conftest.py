"""Paths of the committed evaluation fixture and a local Typer app carrying ``cxr evaluate``."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "evaluate"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def evaluate_app() -> typer.Typer:
    """``cxr evaluate`` on its own app, so these tests do not depend on cli/main.py registering it."""
    from cxrkit.cli.evaluate import app as evaluate

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(evaluate, name="evaluate")
    return app
