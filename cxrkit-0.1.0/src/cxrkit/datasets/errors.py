"""Errors raised while building or reading a dataset.

They subclass :class:`cxrkit.errors.CxrkitError` (so the CLI maps them to exit code 1)
and the closest built-in, and every message names the file, and the row where there is
one, because a wrong label that passes silently costs more than a crash.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import CxrkitError

__all__ = ["DatasetError", "LabelFileError", "MissingImage", "UnknownDataset"]


class DatasetError(CxrkitError, ValueError):
    """Base class of the dataset errors."""


class LabelFileError(DatasetError):
    """A label file is missing, unreadable, or lacks the columns the adapter needs."""

    def __init__(self, path: object, reason: str, missing: Iterable[str] = ()):
        self.path = str(path)
        self.missing = tuple(missing)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    @classmethod
    def missing_columns(cls, path: object, missing: Iterable[str], present: Iterable[str]) -> LabelFileError:
        missing = tuple(missing)
        reason = (
            f"missing column(s) {', '.join(repr(m) for m in missing)}; found {', '.join(repr(p) for p in present)}."
            " Is this the right label file for this dataset (and the right release)?"
        )
        return cls(path, reason, missing)


class MissingImage(DatasetError, FileNotFoundError):
    """The label file lists an image that is not under the image root."""

    def __init__(self, path: object, row: int, dataset: str):
        self.path = str(path)
        self.row = row
        self.dataset = dataset
        super().__init__(
            f"{self.path}: image of row {row} of dataset {dataset!r} does not exist;"
            " check the image root, or skip unreadable images with a warning (on_error='skip')"
        )


class UnknownDataset(DatasetError, KeyError):
    """No registered dataset has this name."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "unknown dataset"
