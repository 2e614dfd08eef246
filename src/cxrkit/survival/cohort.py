"""Load and check a survival cohort: one row per person, columns named by the caller.

Everything that would make a Cox fit silently wrong is refused here, before any model
runs: text in a numeric column, missing values, negative follow-up, an event column
that is not 0/1, too few events. Categorical covariates (any column holding text, e.g.
``sex`` = F/M) are one-hot encoded against a reference level, so the Cox coefficients
are hazard ratios *versus that level*; numeric covariates enter linearly as given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import (
    CohortColumnMissing,
    CohortFileError,
    InvalidCohortValues,
    SurvivalError,
    TooFewEvents,
)

__all__ = ["Cohort", "load_cohort", "validate_cohort", "MAX_LEVELS"]

log = logging.getLogger(__name__)

MAX_LEVELS = 20  # a text covariate with more levels is almost surely an identifier, not a category


@dataclass(frozen=True)
class Cohort:
    """A checked cohort, ready for the Cox models.

    ``data`` keeps the caller's column names for time, event, predicted age and age
    (so results read in the study's own vocabulary), followed by the design columns
    of the covariates (``sex=M`` for a one-hot level). ``lines`` are the file lines
    of the kept rows (header = line 1).
    """

    data: pd.DataFrame
    time: str
    event: str
    predicted_age: str
    age: str
    covariates: tuple[str, ...] = ()
    design: tuple[str, ...] = ()
    encoding: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    n_dropped: int = 0

    @property
    def n(self) -> int:
        return len(self.data)

    @property
    def events(self) -> int:
        return int(self.data[self.event].sum())


def load_cohort(path: str | Path, *, time: str, event: str, predicted_age: str, age: str,
                covariates: Sequence[str] = (), min_events: int = 10, drop_missing: bool = False) -> Cohort:
    """Read a CSV (``.csv`` or ``.csv.gz``) and check it with :func:`validate_cohort`."""
    path = Path(path)
    if not path.is_file():
        raise CohortFileError(path, "no such file")
    try:
        frame = pd.read_csv(path, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise CohortFileError(path, "the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise CohortFileError(path, f"not a readable CSV ({exc})") from None
    frame = frame.dropna(how="all")  # trailing blank lines; the index still gives each row's file line
    return validate_cohort(frame, time=time, event=event, predicted_age=predicted_age, age=age,
                           covariates=covariates, min_events=min_events, drop_missing=drop_missing,
                           source=str(path))


def validate_cohort(frame: pd.DataFrame, *, time: str, event: str, predicted_age: str, age: str,
                    covariates: Sequence[str] = (), min_events: int = 10, drop_missing: bool = False,
                    source: str | None = None) -> Cohort:
    """Check a cohort table and encode its covariates.

    Line numbers in errors are ``index + 2`` (header on line 1), right for a frame
    read by ``pd.read_csv`` with its default index. Missing values are an error unless
    ``drop_missing``, because silently dropping rows changes who the cohort is; when
    dropped, the count goes into the report.
    """
    roles = {"`time`": time, "`event`": event, "`predicted_age`": predicted_age, "`age`": age}
    covariates = tuple(dict.fromkeys(c.strip() for c in covariates if c.strip()))
    named = list(roles.items()) + [("`covariates`", c) for c in covariates]
    seen: dict[str, str] = {}
    for option, name in named:
        if name in seen:
            raise SurvivalError(f"column {name!r} is given both as {seen[name]} and as {option}; "
                                "each role needs its own column")
        seen[name] = option
    missing = [(option, name) for option, name in named if name not in frame.columns]
    if missing:
        raise CohortColumnMissing(missing, [str(c) for c in frame.columns], source)

    # file lines for pd.read_csv's default index; positions for any other index
    base = frame.index if pd.api.types.is_integer_dtype(frame.index) else np.arange(len(frame))
    lines = pd.Series(np.asarray(base, dtype=np.int64) + 2, index=frame.index)
    numeric = {name: _numeric(frame[name], name, lines, source) for name in (time, event, predicted_age, age)}
    raw_cov = {c: frame[c] for c in covariates}

    absent = pd.Series(False, index=frame.index)
    for values in [*numeric.values(), *raw_cov.values()]:
        absent |= values.isna()
    n_dropped = 0
    if absent.any():
        if not drop_missing:
            for name, values in [*numeric.items(), *raw_cov.items()]:
                if values.isna().any():
                    raise InvalidCohortValues(name, "has missing values", lines[values.isna()].tolist(),
                                              hint="Fill or remove them, or pass `drop_missing` to analyse "
                                                   "complete cases",
                                              source=source)
        n_dropped = int(absent.sum())
        log.warning("dropping %d row(s) with a missing value in a used column", n_dropped)
        keep = ~absent
        numeric = {k: v[keep] for k, v in numeric.items()}
        raw_cov = {k: v[keep] for k, v in raw_cov.items()}
        lines = lines[keep]

    t, e = numeric[time], numeric[event]
    if (t < 0).any():
        bad = t < 0
        raise InvalidCohortValues(time, "has negative follow-up times", lines[bad].tolist(), t[bad].tolist(),
                                  hint="Time must run from the radiograph to the event or censoring", source=source)
    bad = ~e.isin([0, 1])
    if bad.any():
        raise InvalidCohortValues(event, "must be 0 (censored) or 1 (event)", lines[bad].tolist(), e[bad].tolist(),
                                  source=source)
    n_events = int(e.sum())
    if n_events < min_events:
        raise TooFewEvents(n_events, min_events, len(e))

    data = pd.DataFrame({name: values.astype(float) for name, values in numeric.items()})
    data[event] = e.astype(int)
    design: list[str] = []
    encoding: dict[str, str] = {}
    for name, values in raw_cov.items():
        columns, description = _encode(name, values, lines, source)
        clash = [c for c in columns if c in data.columns]
        if clash:
            raise SurvivalError(f"encoding covariate {name!r} gives column {clash[0]!r}, which already exists; "
                                "rename one")
        for column, col_values in columns.items():
            data[column] = col_values
        design += list(columns)
        encoding[name] = description
    for name in (predicted_age, age, *design):
        if data[name].nunique() < 2:
            raise SurvivalError(f"column {name!r} has a single value ({data[name].iloc[0]!r}) in the analysed rows; "
                                "a constant has no hazard ratio")
    data.index = lines.to_numpy()
    data.index.name = "line"
    return Cohort(data=data, time=time, event=event, predicted_age=predicted_age, age=age, covariates=covariates,
                  design=tuple(design), encoding=encoding, source=source, n_dropped=n_dropped)


def _numeric(values: pd.Series, name: str, lines: pd.Series, source: str | None) -> pd.Series:
    """Numbers or NaN (missing); text and infinities are errors naming their lines."""
    if values.dtype == bool:
        return values.astype(float)
    converted = pd.to_numeric(values, errors="coerce")
    text = converted.isna() & values.notna()
    text |= np.isinf(converted.astype(float))
    if text.any():
        raise InvalidCohortValues(name, "has non-numeric values", lines[text].tolist(), values[text].tolist(),
                                  hint="Numbers only (a decimal point, not a comma)", source=source)
    return converted.astype(float)


def _encode(name: str, values: pd.Series, lines: pd.Series, source: str | None) -> tuple[dict[str, pd.Series], str]:
    """Numeric covariates as they are; text ones one-hot against their first level in sorted order.

    The alphabetically first level is the reference (as R's ``factor`` does), so the
    choice is predictable from the data alone and stable across re-exports.
    """
    if values.dtype == bool:
        return {name: values.astype(float)}, "numeric (True = 1)"
    converted = pd.to_numeric(values, errors="coerce")
    if converted.notna().all():
        if np.isinf(converted.astype(float)).any():
            bad = np.isinf(converted.astype(float))
            raise InvalidCohortValues(name, "has infinite values", lines[bad].tolist(), source=source)
        return {name: converted.astype(float)}, "numeric, per unit"
    levels = sorted(values.astype(str).unique())
    if len(levels) > MAX_LEVELS:
        raise SurvivalError(f"covariate {name!r} has {len(levels)} distinct text values (more than {MAX_LEVELS}); "
                            "it looks like an identifier or free text, not a category")
    if len(levels) < 2:
        raise SurvivalError(f"covariate {name!r} has a single value ({levels[0]!r}); a constant has no hazard ratio")
    reference, rest = levels[0], levels[1:]
    text = values.astype(str)
    columns = {f"{name}={level}": (text == level).astype(float) for level in rest}
    return columns, f"categorical, reference {reference!r}; indicators for {', '.join(repr(r) for r in rest)}"
