"""Read predictions and labels into the one shape ``evaluate_predictions`` takes.

Both become a frame indexed by image id (the file *name*, extension included, no
folders: predictions of ``/data/nih/images/x.png`` match labels of ``x.png``) with
one float column per label (1 / 0 / NaN). Keeping file parsing here means the
metrics never see a CSV quirk, and a new label source is one function returning a
:class:`LabelTable`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..datasets.metadata import file_name
from ..labels import PATHOLOGIES
from .errors import InputFileError, PrefixMatchesNothing

__all__ = [
    "LabelTable",
    "LABEL_FORMATS",
    "image_id",
    "load_predictions",
    "load_labels",
    "load_labels_csv",
    "load_nih_labels",
    "load_dataset_labels",
    "label_formats",
]

log = logging.getLogger(__name__)

#: Columns of ``cxr predict`` CSVs that are not labels.
_OURS = ("file", "status", "error")
#: what a run's extras add beside the scores (film steps, heat maps, DICOM results, the OOD flag):
#: never scores, so a predictions file keeps working with them
_ANNOTATIONS = ("orientation", "orientation_p", "orientation_fixed", "heatmaps", "saliency", "dicom_sr",
                "dicom_overlay", "ood_score", "ood")
_ID_CANDIDATES = ("file", "Image Index", "image", "image_id", "id", "filename", "path", "Path")
_PATIENT_CANDIDATES = ("Patient ID", "patient_id", "PatientID", "patient")
_CANONICAL = {re.sub(r"[\s_]+", "_", name.lower()): name for name in PATHOLOGIES}


@dataclass(frozen=True)
class LabelTable:
    """Labels (ids x label columns, 1/0/NaN) and, when the source knows them, patient ids per image."""

    labels: pd.DataFrame
    patients: pd.Series | None = None
    source: str = ""
    meta: pd.DataFrame | None = None  # per-image metadata the source knows (view, sex, age), indexed like labels


image_id = file_name  # one rule for matching files by name, shared with dataset metadata


def canonical_label(name: str) -> str:
    """The standard spelling of a label when it differs only in case/space/underscore, else unchanged.

    "Pleural Thickening" and "pleural_thickening" are the same finding; "Nodule" never
    matches "Pseudonodule" (whole names only, no substrings).
    """
    name = str(name).strip()
    return name if name in PATHOLOGIES else _CANONICAL.get(re.sub(r"[\s_]+", "_", name.lower()), name)


def _read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        return pd.read_csv(path, compression="infer", keep_default_na=True, low_memory=False)
    except Exception as exc:  # pandas raises half a dozen types for a bad file
        raise InputFileError(path, f"not a readable CSV ({type(exc).__name__}: {exc})") from exc


def _index_by_id(frame: pd.DataFrame, column: str, path: Path | str) -> pd.DataFrame:
    ids = frame[column].map(image_id)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        examples = ", ".join(repr(v) for v in sorted(set(dup))[:3])
        raise InputFileError(
            path, f"{dup.nunique()} image name(s) appear more than once (e.g. {examples}); ids are matched by "
            "file name, so two images with the same name in different folders cannot be told apart")
    out = frame.drop(columns=[column])
    out.index = pd.Index(ids.to_numpy(), name="id")
    return out


def _numeric(frame: pd.DataFrame, path: Path | str, what: str) -> pd.DataFrame:
    out = {}
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
        if bad.any():
            raise InputFileError(path, f"{what} column {column!r} holds non-numbers (e.g. {frame[column][bad].iloc[0]!r})")
        out[column] = values.astype(float)
    return pd.DataFrame(out, index=frame.index)


def load_predictions(path: str | Path, *, id_column: str | None = None, prefix: str | None = None) -> pd.DataFrame:
    """Predictions as ids x labels; our ``cxr predict`` CSV, or any CSV/CSV.GZ with a column mapping.

    Ours (``file, status, error, <labels>``) needs no options: only ``status == ok`` rows
    count and empty cells stay NaN (no prediction for that label). A foreign file needs
    ``id_column`` (e.g. "Image Index"); ``prefix`` (e.g. "prob_") selects the score
    columns and is stripped to give the label names.
    """
    path = Path(path)
    frame = _read(path)
    ours = id_column is None and {"file", "status"} <= set(frame.columns)
    if ours:
        frame = frame[frame["status"].astype(str) == "ok"].drop(
            columns=[c for c in ("status", "error", *_ANNOTATIONS) if c in frame])
        id_column = "file"
    elif id_column is None:
        raise InputFileError(path, "not a `cxr predict` CSV (no 'file' and 'status' columns); pass `id_column` "
                                   f"to name the image id column (columns: {', '.join(map(str, frame.columns[:8]))})")
    elif id_column not in frame.columns:
        raise InputFileError(path, f"no id column {id_column!r}; columns: {', '.join(map(str, frame.columns[:12]))}")
    if prefix:
        scored = [c for c in frame.columns if c != id_column and str(c).startswith(prefix)]
        if not scored:
            raise PrefixMatchesNothing(path, prefix, [str(c) for c in frame.columns])
        frame = frame[[id_column, *scored]].rename(columns={c: str(c)[len(prefix):] for c in scored})
    frame = frame.rename(columns={c: canonical_label(c) for c in frame.columns if c != id_column})
    frame = _index_by_id(frame, id_column, path)
    if not ours and not prefix:
        # a foreign file without a prefix: its numeric columns are the scores
        frame = frame[[c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]]
    return _numeric(frame, path, "prediction")


def _binary_labels(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Keep label columns: standard names (must be 0/1/NaN) and other all-0/1 columns."""
    keep = {}
    for column in frame.columns:
        name = canonical_label(column)
        values = pd.to_numeric(frame[column], errors="coerce")
        ok = values.isna() == frame[column].isna()
        binary = ok.all() and values.dropna().isin((0.0, 1.0)).all()
        if name in PATHOLOGIES and not binary:
            bad = frame[column][~(values.isin((0.0, 1.0)) | frame[column].isna())].iloc[0]
            raise InputFileError(path, f"label column {column!r} must hold 1, 0 or empty, found {bad!r} "
                                       "(resolve uncertain labels before evaluating)")
        if binary and (name in PATHOLOGIES or values.notna().any()):
            keep[name] = values.astype(float)
    return pd.DataFrame(keep, index=frame.index)


def load_labels_csv(path: str | Path, *, id_column: str | None = None, patient_column: str | None = None) -> LabelTable:
    """A plain labels CSV: an id column, optional patient column, and 0/1 label columns.

    Without ``id_column`` the first of file / Image Index / image / id / filename / path
    is used; a "Patient ID"-like column is picked up automatically, enabling
    patient-level bootstrap. Other non-binary columns (age, sex, view) are ignored.
    """
    path = Path(path)
    frame = _read(path)
    if id_column is None:
        id_column = next((c for c in _ID_CANDIDATES if c in frame.columns), None)
        if id_column is None:
            raise InputFileError(path, f"no image id column (looked for {', '.join(_ID_CANDIDATES)}); "
                                       "name it with `label_options[\"id_column\"]`")
    elif id_column not in frame.columns:
        raise InputFileError(path, f"no id column {id_column!r}; columns: {', '.join(map(str, frame.columns[:12]))}")
    if patient_column is None:
        patient_column = next((c for c in _PATIENT_CANDIDATES if c in frame.columns), None)
    elif patient_column not in frame.columns:
        raise InputFileError(path, f"no patient column {patient_column!r}")
    frame = _index_by_id(frame, id_column, path)
    patients = frame.pop(patient_column).astype(str) if patient_column else None
    labels = _binary_labels(frame, path)
    if labels.shape[1] == 0:
        raise InputFileError(path, "no label column (0/1 values) found")
    meta = frame[[c for c in frame.columns if canonical_label(c) not in labels.columns]]
    return LabelTable(labels=labels, patients=patients, source=str(path), meta=meta)


def load_dataset_labels(path: str | Path, dataset: str) -> LabelTable:
    """Labels of any registered :mod:`cxrkit.datasets` adapter, read from its own label file.

    The adapter is built without images (as ``cxr datasets summary --no-images`` does), so
    only the label file is read: its harmonised labels (1 / 0 / NaN; uncertain CheXpert-style
    -1 become NaN, i.e. unknown and left out of that label's metrics) indexed by the image's
    file name, and its patient ids for the patient-level bootstrap. Companion files an
    adapter needs (e.g. MIMIC's metadata CSV) are looked up, under their default names, in
    the label file's folder. Two images with the same file name are an error, since ids are
    matched by file name.
    """
    path = Path(path)
    return table_from(_build_dataset(path, dataset), path, dataset)


def _build_dataset(path: Path, dataset: str):
    from ..datasets import DatasetError, LabelFileError, open_dataset

    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        # root = the label file's folder only so that companion files are found; no image is read
        return open_dataset(dataset, path.parent, path)
    except LabelFileError as exc:
        raise InputFileError(exc.path, exc.reason) from exc
    except DatasetError as exc:
        raise InputFileError(path, str(exc)) from exc


def table_from(data, path: Path, dataset: str) -> LabelTable:
    frame = pd.DataFrame(data.labels.astype(float), columns=list(data.label_names))
    frame.insert(0, "path", data.frame["path"].astype(str).to_numpy())
    frame.insert(1, "patient_id", data.frame["patient_id"].astype(str).to_numpy())
    indexed = _index_by_id(frame, "path", path)
    patients = indexed.pop("patient_id")
    meta_columns = [c for c in ("view", "sex", "age") if c in data.frame.columns]
    meta = data.frame[meta_columns].copy()
    meta.index = indexed.index
    return LabelTable(labels=indexed, patients=patients, source=str(path), meta=meta)


def load_nih_labels(path: str | Path) -> LabelTable:
    """NIH ``Data_Entry_2017_v2020.csv`` (plain or .gz) through the ``nih`` dataset adapter, as training reads it.

    14 ChestX-ray14 labels, patient ids. NIH labels every image for all 14 findings, so
    absent findings are 0 (not unknown) and "No Finding" means all 14 are 0; a row with no
    label string is unknown (NaN); a token outside NIH's vocabulary is refused, naming its row.
    """
    return load_dataset_labels(path, "nih")


#: Label sources with a loader of their own; every other registered dataset name
#: (:func:`cxrkit.datasets.list_datasets`) goes through :func:`load_dataset_labels`.
LABEL_FORMATS: dict[str, Callable[..., LabelTable]] = {"csv": load_labels_csv, "nih": load_nih_labels}


def label_formats() -> list[str]:
    """Every name ``load_labels`` / ``cxr evaluate --dataset`` accepts: ``csv`` and the registered datasets."""
    from ..datasets import list_datasets

    return ["csv", *[name for name in list_datasets() if name != "csv"]]


def load_labels(path: str | Path, dataset: str | None = None, **options) -> LabelTable:
    """Dispatch on ``dataset`` (``csv`` or any registered dataset); ``None`` recognises an NIH file by its header."""
    if dataset is None:
        header = _read_header(Path(path))
        dataset = "nih" if "Finding Labels" in header else "csv"
    loader = LABEL_FORMATS.get(dataset)
    if loader is not None:
        return loader(path, **options)
    if dataset not in label_formats():
        raise InputFileError(path, f"unknown label format {dataset!r}; choose one of {', '.join(label_formats())}")
    if options:
        raise InputFileError(path, f"options {', '.join(sorted(options))} apply to a plain labels CSV (csv), "
                                   f"not to dataset {dataset!r}")
    return load_dataset_labels(path, dataset)


def _read_header(path: Path) -> list[str]:
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0, compression="infer").columns]
    except Exception as exc:
        raise InputFileError(path, f"not a readable CSV ({type(exc).__name__}: {exc})") from exc
