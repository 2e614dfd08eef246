"""Errors raised while evaluating predictions against labels.

Each is a :class:`cxrkit.errors.CxrkitError` (the CLI prints one line and exits 1)
and a ``ValueError``; each message says what was expected and what was found, since
an evaluation that silently scored the wrong rows is worse than one that stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import CxrkitError

__all__ = ["EvaluationError", "NoOverlap", "LabelColumnMissing", "PrefixMatchesNothing", "InputFileError"]


def _examples(values: Iterable[object], k: int = 3) -> str:
    values = sorted(str(v) for v in values)
    shown = ", ".join(repr(v) for v in values[:k])
    return shown + (", ..." if len(values) > k else "") if values else "(none)"


class EvaluationError(CxrkitError, ValueError):
    """Base class of the evaluation errors."""


class InputFileError(EvaluationError):
    """A predictions or labels file is missing, unreadable or not in the expected shape."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NoOverlap(EvaluationError):
    """No prediction id matches a label id, so there is nothing to score."""

    def __init__(self, prediction_ids: Sequence[object], label_ids: Sequence[object], what: str = "predictions"):
        self.n_predictions = len(prediction_ids)
        self.n_labels = len(label_ids)
        super().__init__(
            f"no image id is shared by the {what} ({self.n_predictions} ids, e.g. {_examples(prediction_ids)}) "
            f"and the labels ({self.n_labels} ids, e.g. {_examples(label_ids)}). Ids are matched by file name "
            "(the basename, extension included): check `id_column` and that both files describe the same images."
        )


class LabelColumnMissing(EvaluationError, KeyError):
    """A label that should be scored has no column in the labels (or in the predictions)."""

    def __init__(self, missing: Sequence[str], where: str, present: Sequence[str]):
        self.missing = tuple(missing)
        super().__init__(
            f"label column(s) {', '.join(repr(m) for m in missing)} missing from the {where}; "
            f"it has: {', '.join(repr(p) for p in present) or '(no label columns)'}. "
            "Label names must match exactly (e.g. 'Pleural_Thickening'); use `label_names` to choose which to score."
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class PrefixMatchesNothing(EvaluationError):
    """``--prefix`` selected no column of a foreign predictions file."""

    def __init__(self, path: object, prefix: str, columns: Sequence[str]):
        self.prefix = prefix
        super().__init__(
            f"{path}: no column starts with the prefix {prefix!r}; columns are: "
            f"{', '.join(repr(c) for c in list(columns)[:12])}{', ...' if len(columns) > 12 else ''}"
        )
