"""What a dataset source is, as data: its label files, its label table, and how its label file
maps onto the standard frame.

A source whose label file needs only its columns renamed (and a few values recoded) is
declared, not programmed: ``columns`` maps each standard column to the file's column, and
the base reads it (:meth:`DatasetSpec.read`). A source that has to parse, join or fold
rows brings its own ``load`` function instead. Either way the result is the standard frame
described in :mod:`cxrkit.datasets.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from .errors import LabelFileError

if TYPE_CHECKING:
    from .localisation import Localisation

__all__ = ["LabelFile", "DatasetSpec", "read_table", "require_columns", "required_file"]


@dataclass(frozen=True)
class LabelFile:
    """A file a source needs: ``key`` names it for ``files=``, ``default`` is looked up under the root."""

    key: str
    default: str | None = None
    required: bool = True
    doc: str = ""


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """Everything that distinguishes one dataset from another, as data.

    Give either ``load`` (files -> standard frame) or ``columns`` (standard column -> column of
    the ``labels`` file; a column-style source's label columns are the keys of ``table``).
    With ``columns``, ``values`` recodes values of a standard column (``{"age": {"85 or
    more": 85}}``), ``path_prefix`` is a regular expression removed from the start of every
    path, and ``label_codes`` (e.g. ``(1, 0, -1)``) makes any other label value an error
    naming its row and column instead of unknown.
    """

    name: str
    title: str
    table: Mapping[str, str | tuple[str, ...]]
    load: Callable[[Mapping[str, Path | None]], pd.DataFrame] | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    path_prefix: str = ""
    label_codes: tuple[float, ...] | None = None
    files: tuple[LabelFile, ...] = (LabelFile("labels"),)
    kind: str = "tokens"  # or "columns"
    no_finding: str | None = None  # column whose value 1 turns unknown labels into 0
    no_finding_exempt: tuple[str, ...] = ()
    passthrough: bool = False  # unmapped tokens become labels of their own (COVID-19 collection)
    ignore_tokens: tuple[str, ...] = ()
    localisation: Localisation | None = None  # boxes or masks (cxrkit.datasets.localisation)
    url: str = ""
    licence: str = ""
    citation: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.load is None) == (not self.columns):
            raise InvalidArgument(f"dataset spec {self.name!r}: give either load or columns")
        if self.columns and self.kind != "columns":
            raise InvalidArgument(f"dataset spec {self.name!r}: a column map reads labels from columns (kind='columns')")

    def read(self, files: Mapping[str, Path | None]) -> pd.DataFrame:
        """The standard frame of this source from its resolved label files."""
        if self.load is not None:
            return self.load(files)
        return _read_columns(self, required_file(files, "labels"))


def required_file(files: Mapping[str, Path | None], key: str) -> Path:
    """The path of a file the spec declares required; only optional files resolve to None.

    Resolving the files already raised for a required one that is missing, so an error here
    means a loader reads a file its spec does not declare required.
    """
    path = files.get(key)
    if path is None:
        raise LabelFileError(key, f"the {key} file is needed but was not given")
    return path


def read_table(path: Path, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` that reports an unreadable file as :class:`LabelFileError`."""
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise LabelFileError(path, "label file does not exist") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, ValueError) as exc:
        raise LabelFileError(path, f"cannot be read as a CSV table ({exc})") from None


def require_columns(frame: pd.DataFrame, columns: Iterable[str], path: object) -> None:
    """Raise :class:`LabelFileError` naming every required column the frame lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LabelFileError.missing_columns(path, missing, frame.columns)


def _read_columns(spec: DatasetSpec, path: Path) -> pd.DataFrame:
    """A declarative source: rename the mapped columns, recode values, keep the label columns as numbers."""
    raw = read_table(path)
    label_columns = list(dict.fromkeys([*spec.table, *([spec.no_finding] if spec.no_finding else [])]))
    require_columns(raw, list(dict.fromkeys([*spec.columns.values(), *label_columns])), path)
    out = pd.DataFrame({standard: raw[column] for standard, column in spec.columns.items()})
    for standard, mapping in spec.values.items():
        out[standard] = out[standard].replace(mapping)
    out["path"] = out["path"].astype(str)
    if spec.path_prefix:
        out["path"] = out["path"].str.replace(f"^(?:{spec.path_prefix})", "", regex=True)
    out["row"] = np.arange(len(raw))
    labels = raw[label_columns].apply(pd.to_numeric, errors="coerce")
    if spec.label_codes is not None:
        _check_codes(raw[label_columns], labels, spec.label_codes, path)
    return pd.concat([out.reset_index(drop=True), labels.reset_index(drop=True)], axis=1)


def _check_codes(raw: pd.DataFrame, labels: pd.DataFrame, codes: tuple[float, ...], path: Path) -> None:
    """The first label cell that is not one of ``codes`` (or blank) is an error naming row and column."""
    allowed = ", ".join(f"{c:g}" for c in codes)
    for bad, what in ((labels.notna() & ~labels.isin(list(codes)), f"is not {allowed} or blank"),
                      (raw.notna() & labels.isna(), "is not a number")):
        if bad.any().any():
            r, c = np.argwhere(bad.to_numpy())[0]
            value = raw.iat[r, c]
            value = value.item() if isinstance(value, np.generic) else value
            raise LabelFileError(path, f"row {r}, column {raw.columns[c]!r}: label value {value!r} {what}")
