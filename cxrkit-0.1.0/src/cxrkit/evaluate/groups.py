"""The subgroup columns of an evaluation: from the label file, its adapter, or sidecar CSVs.

``cxr evaluate --group-by source,sex`` names columns the way a user sees them in their
files ("Patient Gender", "View Position", a ``source`` column of ``sources.csv``) or by
the adapters' own names (``view``, ``sex``, ``age``); both work. Continuous columns must be
cut into bands first (``--age-bands 0,40,60,80``): one AUC per distinct age would be noise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets import LabelFileError
from ..datasets.metadata import age_bands as cut_bands
from ..datasets.metadata import read_metadata
from .errors import InputFileError

__all__ = ["group_table", "MAX_GROUPS"]

#: More distinct values than this in a numeric column means it needs bands.
MAX_GROUPS = 12


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _sources(label_file: Path | None, metadata: Sequence[str | Path], meta: pd.DataFrame | None) -> list[pd.DataFrame]:
    """Frames to look columns up in, most specific first: sidecars, the adapter's, the raw label file."""
    frames = []
    for path in metadata:
        try:
            frames.append(read_metadata(path))
        except LabelFileError as exc:
            raise InputFileError(exc.path, exc.reason) from exc
    if meta is not None:
        frames.append(meta)
    if label_file is not None:
        try:
            frames.append(read_metadata(label_file))
        except LabelFileError:
            pass  # a label file without a recognisable id column still has its adapter's columns
    return frames


def _find(column: str, frames: list[pd.DataFrame]) -> pd.Series | None:
    for frame in frames:
        if column in frame.columns:
            return frame[column]
    wanted = _key(column)
    aliases = {"gender": "sex", "patientgender": "sex", "patientsex": "sex", "viewposition": "view",
               "patientage": "age"}
    for frame in frames:
        for candidate in frame.columns:
            if _key(candidate) == wanted or aliases.get(_key(candidate)) == wanted or aliases.get(wanted) == _key(candidate):
                return frame[candidate]
    return None


def group_table(columns: Sequence[str], *, label_file: str | Path | None = None,
                metadata: Sequence[str | Path] = (), meta: pd.DataFrame | None = None,
                age_bands: Sequence[float] | None = None) -> pd.DataFrame:
    """Image ids x ``columns``: each value a string group name, or None (no group)."""
    frames = _sources(Path(label_file) if label_file else None, metadata, meta)
    out = {}
    for column in columns:
        values = _find(column, frames)
        if values is None:
            available = sorted({str(c) for f in frames for c in f.columns})
            raise InputFileError(", ".join(str(m) for m in metadata) or str(label_file),
                                 f"no column {column!r} for `group_by`; available: {', '.join(available)} "
                                 "(add a sidecar CSV with `metadata`)")
        values = values[~values.index.duplicated()]
        numeric = pd.to_numeric(values, errors="coerce")
        is_numeric = numeric.notna().sum() == values.notna().sum() and values.notna().any()
        continuous = is_numeric and (numeric.nunique() > MAX_GROUPS or "age" in _key(column))
        if continuous and age_bands:
            values = cut_bands(numeric, age_bands)
        elif continuous and numeric.nunique() > MAX_GROUPS:
            raise InputFileError(column, f"{column!r} in `group_by`: {numeric.nunique()} distinct numbers; cut "
                                         "them into bands with `age_bands`, e.g. 0,40,60,80")
        out[column] = pd.Series(np.where(pd.isna(values), None, values.astype(str)), index=values.index, dtype=object)
    return pd.DataFrame(out)
