"""Per-image metadata beside the labels: sidecar CSVs joined by file name, and age bands.

Subgroups decide whether a model holds up (a site, a scanner, a selection step that
produced part of the data), and they rarely live in the label file itself: NIH's sample
here has its draw in ``sources.csv``, a hospital has its scanner in a PACS export. One
join rule for training and evaluation: a sidecar CSV's image column is matched by *file
name* to the dataset's images, the way ``cxr evaluate`` matches predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from .errors import LabelFileError

__all__ = ["ID_COLUMNS", "file_name", "read_metadata", "join_metadata", "age_bands", "band_labels"]

#: Columns tried, in order, as the image id of a sidecar CSV.
ID_COLUMNS = ("file", "Image Index", "image", "image_id", "filename", "path", "Path", "id")


def file_name(path: object) -> str:
    """The file name of a path written on any OS (``C:\\a\\b.png`` and ``/a/b.png`` both give ``b.png``)."""
    text = str(path).strip()
    return PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name


def read_metadata(path: str | Path, id_column: str | None = None) -> pd.DataFrame:
    """A sidecar CSV as a frame indexed by image file name (its id column dropped).

    Every other column is kept as it is (strings stay strings, numbers numbers). Two rows
    for the same file name are an error: a subgroup must be one value per image.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(path, "metadata file not found")
    try:
        frame = pd.read_csv(path, compression="infer", low_memory=False)
    except Exception as exc:  # pandas raises several types for a bad file
        raise LabelFileError(path, f"not a readable CSV ({type(exc).__name__}: {exc})") from exc
    if id_column is None:
        id_column = next((c for c in ID_COLUMNS if c in frame.columns), None)
        if id_column is None:
            raise LabelFileError(path, f"no image id column (looked for {', '.join(ID_COLUMNS)})")
    elif id_column not in frame.columns:
        raise LabelFileError(path, f"no id column {id_column!r}; columns: {', '.join(map(str, frame.columns))}")
    ids = frame[id_column].map(file_name)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise LabelFileError(path, f"{duplicated.nunique()} image name(s) listed twice, e.g. {duplicated.iloc[0]!r}")
    out = frame.drop(columns=[id_column])
    out.index = pd.Index(ids.to_numpy(), name="id")
    return out


def join_metadata(frame: pd.DataFrame, paths: Sequence[str | Path], *, path_column: str = "path") -> pd.DataFrame:
    """``frame`` with the columns of each sidecar CSV added, matched on the file name of ``path_column``.

    Images a sidecar does not list get NaN there (they form no group; evaluation leaves
    them out of that column's groups). A sidecar column that already exists is an error
    rather than a silent overwrite.
    """
    out = frame.copy()
    names = out[path_column].map(file_name)
    for path in paths:
        extra = read_metadata(path)
        clash = sorted(set(extra.columns) & set(out.columns))
        if clash:
            raise LabelFileError(path, f"column(s) {', '.join(clash)} already exist in the dataset; rename them")
        matched = names.isin(extra.index)
        if not matched.any():
            raise LabelFileError(path, "none of its image names match the dataset's images")
        for column in extra.columns:
            out[column] = extra[column].reindex(names.to_numpy()).to_numpy()
    return out


def band_labels(edges: Sequence[float]) -> list[str]:
    """Readable names of the bands cut by ``edges``: ``[0, 40, 60]`` -> ``0-39, 40-59, 60+``."""
    edges = [float(e) for e in edges]
    names = []
    for low, high in pairwise([*edges, math.inf]):
        lo = f"{low:g}"
        names.append(f"{lo}+" if math.isinf(high) else f"{lo}-{high - 1:g}" if float(high).is_integer()
                     and float(low).is_integer() else f"{lo}-<{high:g}")
    return names


def age_bands(values: Sequence[float] | pd.Series, edges: Sequence[float]) -> pd.Series:
    """Ages cut into bands ``[e0, e1), [e1, e2), ..., [ek, inf)``; below ``e0`` or unknown -> NaN."""
    edges = [float(e) for e in edges]
    if len(edges) < 1 or any(b <= a for a, b in pairwise(edges)):
        raise InvalidArgument(f"age band edges must increase, got {list(edges)}")
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    position = np.searchsorted(np.asarray(edges), numbers, side="right") - 1
    names = np.asarray(band_labels(edges), dtype=object)
    out = np.where((position >= 0) & np.isfinite(numbers), names[np.clip(position, 0, len(names) - 1)], None)
    index = values.index if isinstance(values, pd.Series) else None
    return pd.Series(out, index=index, dtype=object)
