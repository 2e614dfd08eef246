"""Simulated cohorts with a known hazard ratio, and ``cxr survival`` on its own Typer app."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import typer

# True hazard ratios of the simulation: per 5 years for the two ages, M versus F for sex.
TRUE_HR = {"cxr_age": 2.0, "age": 1.5, "sex=M": 1.3}


def simulate_cohort(seed: int, n: int = 2000, *, shape: float = 1.5, hr: dict[str, float] = TRUE_HR) -> pd.DataFrame:
    """People aged 50-80 whose CXR-Age = age + N(0, 4^2) gap; hazard ∝ exp(b_cxr·cxr_age + b_age·age + b_sex·male).

    Weibull event times (``shape`` 1 = exponential) with that proportional hazard, so a
    Cox model with both ages and sex is correctly specified and its true coefficients
    are log(HR per 5 y)/5 and log(HR male). Censoring: uniform drop-out over 0-30 years
    plus the end of the study at 20 years, leaving ~45% events.
    """
    rng = np.random.default_rng(seed)
    age = rng.uniform(50, 80, n)
    cxr_age = age + rng.normal(0, 4, n)
    sex = rng.choice(np.array(["F", "M"]), n)
    lp = (math.log(hr["cxr_age"]) / 5 * (cxr_age - 65) + math.log(hr["age"]) / 5 * (age - 65)
          + math.log(hr["sex=M"]) * (sex == "M"))
    t_event = (-np.log(rng.uniform(size=n)) / (0.01 * np.exp(lp))) ** (1 / shape)
    t_censor = np.minimum(rng.uniform(0, 30, n), 20.0)
    return pd.DataFrame({"years": np.minimum(t_event, t_censor), "died": (t_event <= t_censor).astype(int),
                         "cxr_age": cxr_age, "age": age, "sex": sex})


@pytest.fixture(scope="session")
def simulate() -> Callable[..., pd.DataFrame]:
    return simulate_cohort


@pytest.fixture(scope="session")
def survival_app() -> typer.Typer:
    """``cxr survival`` on its own app, so these tests do not depend on cli/main.py registering it."""
    from cxrkit.cli.survival import survival

    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command("survival")(survival)
    app.command("noop", hidden=True)(lambda: None)  # keeps "survival" a sub-command name
    return app
