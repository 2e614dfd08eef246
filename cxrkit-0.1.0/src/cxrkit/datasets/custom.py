"""Your own images: from sub-folder names (``folder_dataset``) or from a CSV (``csv_dataset``).

Both build a :class:`DatasetSpec` on the fly, so user data gets exactly the same base
(views, one-per-patient, splits, shards, errors) as the public datasets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .base import DatasetSpec, XrayDataset, read_table, require_columns
from .errors import LabelFileError

__all__ = ["folder_dataset", "csv_dataset", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom", ".bmp")


def folder_dataset(root: str | os.PathLike, *, name: str = "folder", **kwargs: Any) -> XrayDataset:
    """Images in ``root/<label>/...``: each image is positive for its folder's label, negative for the rest.

    Images directly under ``root`` are unlabelled (all NaN). Folder names are used as given
    (a folder called "Effusion" lines up with the standard label); the patient of an image is
    its file stem, since a folder says nothing about patients.
    """
    root = Path(root)
    if not root.is_dir():
        raise LabelFileError(root, "image folder does not exist")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:  # an empty dataset would fail later, far from the cause
        raise LabelFileError(root, f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under this folder")
    classes = sorted({p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) > 1})

    def load(files: Mapping[str, Path | None]) -> pd.DataFrame:
        rel = [p.relative_to(root) for p in paths]
        return pd.DataFrame({
            "path": [r.as_posix() for r in rel],
            "patient_id": [r.stem for r in rel],
            "row": np.arange(len(rel)),
            "tokens": [(r.parts[0],) if len(r.parts) > 1 else None for r in rel],
        })

    spec = DatasetSpec(name=name, title=f"image folder {root}", load=load, table={c: c for c in classes}, files=())
    return XrayDataset(spec, root, **kwargs)


def csv_dataset(
    csv: str | os.PathLike,
    root: str | os.PathLike | None = None,
    *,
    path_column: str = "path",
    label_columns: Sequence[str] | Mapping[str, str] | None = None,
    patient_column: str | None = None,
    view_column: str | None = None,
    age_column: str | None = None,
    sex_column: str | None = None,
    name: str = "csv",
    **kwargs: Any,
) -> XrayDataset:
    """Images listed in a CSV, labels in columns coded 1 / 0 / -1 (uncertain) / blank (unknown).

    ``label_columns`` is a list of columns, or a mapping ``column -> standard label`` to rename
    (e.g. ``{"effusion": "Effusion"}``); by default every column not otherwise used is a label.
    Without ``patient_column`` each image is its own patient, so seeded splits cannot keep a
    patient's images together: pass it whenever the CSV has one.
    """
    csv = Path(csv)
    head = read_table(csv, nrows=0)
    used = [c for c in (path_column, patient_column, view_column, age_column, sex_column) if c]
    require_columns(head, used + (list(label_columns) if label_columns is not None else []), csv)
    if label_columns is None:
        label_columns = [c for c in head.columns if c not in used]
    table = dict(label_columns) if isinstance(label_columns, Mapping) else {c: c for c in label_columns}
    columns = {"path": path_column, "patient_id": patient_column or path_column, "view": view_column,
               "age": age_column, "sex": sex_column}
    spec = DatasetSpec(name=name, title=f"CSV {csv}", table=table, kind="columns", label_codes=(1, 0, -1),
                       columns={standard: column for standard, column in columns.items() if column})
    return XrayDataset(spec, root, csv, **kwargs)
