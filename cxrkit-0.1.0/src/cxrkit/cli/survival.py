"""``cxr survival``: Cox models and Kaplan–Meier curves of CXR-Age against chronological age.

Thin on purpose: flags are checked here, the work is :mod:`cxrkit.survival` (imported on
use, so ``cxr --help`` does not load lifelines).
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import typer

from ..errors import InvalidArgument, MissingDependency
from . import _options
from ._output import emit, speaks_flags, table


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3g}"
    return str(value)


@speaks_flags()
def survival(
    cohort: Path = typer.Argument(..., help="Cohort CSV(.gz), one row per person."),
    time: str = typer.Option(..., "--time", help="Column: time from the radiograph to event or censoring."),
    event: str = typer.Option(..., "--event", help="Column: 1 = event (e.g. death), 0 = censored."),
    predicted_age: str = typer.Option(..., "--predicted-age", help="Column: CXR-Age (years), e.g. cxr_age from `cxr age`."),
    age: str = typer.Option(..., "--age", help="Column: chronological age (years)."),
    covariates: str | None = typer.Option(None, "--covariates", help="Comma-separated covariate columns, e.g. sex,smoker; text columns are one-hot encoded."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (created)."),
    min_events: int = typer.Option(10, "--min-events", min=1, help="Refuse cohorts with fewer events than this."),
    drop_missing: bool = typer.Option(False, "--drop-missing", help="Drop rows with a missing value in a used column (default: error)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the Kaplan–Meier PNG."),
    fmt: str = _options.FORMAT,
) -> None:
    """Cox PH hazard ratios per 5 years of CXR-Age and age, LR test of CXR-Age's added value, PH check, KM by quartile.

    Writes cox.csv, models.csv, lr_test.csv, ph_test.csv, km_*.csv, a KM plot and report.md.
    """
    if fmt not in ("human", "json"):
        raise InvalidArgument(f"--format must be human or json, got {fmt!r}")
    try:
        from .. import survival as sv
    except ImportError as exc:
        raise MissingDependency("lifelines", f"cxr survival ({exc.name} is missing)") from None

    names = [c.strip() for c in (covariates or "").split(",") if c.strip()]
    data = sv.load_cohort(cohort, time=time, event=event, predicted_age=predicted_age, age=age,
                          covariates=names, min_events=min_events, drop_missing=drop_missing)
    analysis = sv.analyse_survival(data)
    command = ("cxr survival " + " ".join(shlex.quote(a) for a in sys.argv[2:])
               if len(sys.argv) > 1 and sys.argv[1] == "survival" else None)
    sv.write_survival_report(analysis, output, plots=plots, command=command, sources={"cohort": str(cohort)})
    if fmt == "json":
        emit({"output": str(output), **analysis.to_dict()}, fmt)
        return
    rows = analysis.cox.cox.to_dict("records")
    lr = analysis.cox.lr_test.iloc[0]
    title = (f"{data.n} people, {data.events} events -> {output}  |  LR test of {lr['added_term']}: "
             f"chi2 {lr['chi2']:.2f}, p {_cell(float(lr['p']))}")
    emit(rows, fmt, table(list(sv.COX_COLUMNS), [[_cell(r[c]) for c in sv.COX_COLUMNS] for r in rows], title=title))
