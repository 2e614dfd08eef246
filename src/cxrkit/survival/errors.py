"""Errors raised while loading a survival cohort or fitting its Cox models.

Each is a :class:`cxrkit.errors.CxrkitError` (the CLI prints one line and exits 1)
and a ``ValueError``. Messages name the column and the file lines at fault, because a
cohort CSV is usually exported from a study database by someone else, and "could not
convert string to float" does not tell them which of 40,000 rows to fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import CxrkitError

__all__ = [
    "SurvivalError",
    "CohortFileError",
    "CohortColumnMissing",
    "InvalidCohortValues",
    "TooFewEvents",
    "CoxFitError",
]

_SHOWN = 5  # offending lines listed in a message; the count says how many more


def _lines(lines: Sequence[int], values: Sequence[object] | None = None) -> str:
    """'lines 3 ('abc'), 7 ('?') and 12 more' -- short enough for one terminal line."""
    shown = [f"{n}" if values is None else f"{n} ({values[i]!r})" for i, n in enumerate(lines[:_SHOWN])]
    more = len(lines) - len(shown)
    word = "line" if len(lines) == 1 else "lines"
    return f"{word} {', '.join(shown)}" + (f" and {more} more" if more > 0 else "")


class SurvivalError(CxrkitError, ValueError):
    """Base class of the survival-analysis errors."""


class CohortFileError(SurvivalError):
    """The cohort file is missing, unreadable, or not a table."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CohortColumnMissing(SurvivalError, KeyError):
    """A column named by an option (--time, --event, ...) is not in the cohort."""

    def __init__(self, missing: Sequence[tuple[str, str]], present: Sequence[str], source: str | None = None):
        self.missing = tuple(name for _, name in missing)
        listed = ", ".join(f"{name!r} (given as {option})" for option, name in missing)
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}column(s) {listed} not in the cohort; it has: "
            f"{', '.join(repr(p) for p in present) or '(no columns)'}. Names are case-sensitive."
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class InvalidCohortValues(SurvivalError):
    """A column holds values the analysis cannot use: text, missing, negative times, events not 0/1.

    ``lines`` are file line numbers (the header is line 1), so they can be looked up
    directly in an editor or with ``sed -n``.
    """

    def __init__(self, column: str, problem: str, lines: Sequence[int], values: Sequence[object] | None = None,
                 hint: str = "", source: str | None = None):
        self.column = column
        self.lines = tuple(int(n) for n in lines)
        where = f"{source}: " if source else ""
        text = f"{where}column {column!r} {problem} on {_lines(self.lines, values)}"
        super().__init__(text + (f". {hint}" if hint else ""))


class TooFewEvents(SurvivalError):
    """Too few events for a Cox model to estimate anything worth reporting."""

    def __init__(self, events: int, minimum: int, n: int):
        self.events, self.minimum, self.n = events, minimum, n
        super().__init__(
            f"only {events} event(s) among {n} people; at least {minimum} are needed for the Cox models "
            "(a common rule is 10 events per estimated coefficient). Check that `event` marks the event with 1 "
            "and censoring with 0, or lower `min_events` if you know what you are doing."
        )


class CoxFitError(SurvivalError):
    """lifelines could not fit a Cox model (no convergence, collinear terms, ...)."""

    def __init__(self, model: str, reason: str):
        self.model = model
        super().__init__(
            f"the Cox model {model!r} could not be fitted: {reason}. Usual causes: a covariate that is constant or "
            "almost perfectly predicts the event, or two collinear columns (e.g. CXR-Age identical to age)."
        )
