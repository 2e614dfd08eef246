"""The CheXpert-labeler family: CheXpert, MIMIC-CXR and BRAX share one label table.

Their labels are columns coded 1 / 0 / -1 (uncertain) / blank (not mentioned). "No
Finding" = 1 turns *blank* labels into 0, except Support Devices (a normal study can carry
a device; the CheXpert labeler sets "No Finding" ignoring devices). The uncertain policy
is the dataset's ``uncertain=`` argument: "nan" (default), "ones", "zeros" or "keep".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from .base import DatasetSpec, LabelFile, read_table, require_columns
from .spec import required_file

__all__ = ["CHEXPERT", "MIMIC", "BRAX", "CHEXPERT_TABLE"]

CHEXPERT_TABLE: dict[str, str] = {
    "Enlarged Cardiomediastinum": "Enlarged Cardiomediastinum",
    "Cardiomegaly": "Cardiomegaly",
    "Lung Opacity": "Lung Opacity",
    "Lung Lesion": "Lung Lesion",
    "Edema": "Edema",
    "Consolidation": "Consolidation",
    "Pneumonia": "Pneumonia",
    "Atelectasis": "Atelectasis",
    "Pneumothorax": "Pneumothorax",
    "Pleural Effusion": "Effusion",
    "Pleural Other": "Pleural Other",
    "Fracture": "Fracture",
    "Support Devices": "Support Devices",
}
_LABEL_COLUMNS = tuple(CHEXPERT_TABLE) + ("No Finding",)


class _Columns(TypedDict):
    """What the CheXpert-labelled sources share, spelled once."""

    table: Mapping[str, str | tuple[str, ...]]
    kind: str
    no_finding: str
    no_finding_exempt: tuple[str, ...]


_COMMON = _Columns(table=CHEXPERT_TABLE, kind="columns", no_finding="No Finding", no_finding_exempt=("Support Devices",))


def _label_part(raw: pd.DataFrame) -> pd.DataFrame:
    return raw[list(_LABEL_COLUMNS)].apply(pd.to_numeric, errors="coerce").reset_index(drop=True)


def _load_chexpert(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    raw = read_table(path)
    require_columns(raw, ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA") + _LABEL_COLUMNS, path)
    rel = raw["Path"].astype(str).str.replace(r"^CheXpert-v1\.0(-small)?/", "", regex=True)
    view = raw["Frontal/Lateral"].where(raw["Frontal/Lateral"] != "Frontal", raw["AP/PA"]).replace({"Lateral": "L"})
    out = pd.DataFrame({
        "path": rel,
        "patient_id": rel.str.extract(r"patient(\d+)", expand=False),
        "study_id": rel.str.extract(r"(patient\d+/study\d+)", expand=False),
        "view": view,
        "age": pd.to_numeric(raw["Age"], errors="coerce").replace(0, np.nan),
        "sex": raw["Sex"].replace({"Male": "M", "Female": "F", "Unknown": ""}),
        "row": np.arange(len(raw)),
        "split": rel.str.extract(r"^(train|valid|test)/", expand=False).fillna(""),
    })
    return pd.concat([out, _label_part(raw)], axis=1)


CHEXPERT = DatasetSpec(
    name="chexpert",
    title="CheXpert (Stanford)",
    load=_load_chexpert,
    files=(LabelFile("labels", "train.csv", doc="train.csv or valid.csv of CheXpert-v1.0(-small)"),),
    url="https://stanfordmlgroup.github.io/competitions/chexpert/",
    licence="Stanford University School of Medicine CheXpert Dataset Research Use Agreement (non-commercial).",
    citation="Irvin J et al. CheXpert. AAAI 2019.",
    **_COMMON,
)


def _load_mimic(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path, meta_path = required_file(files, "labels"), required_file(files, "metadata")
    labels = read_table(path)
    require_columns(labels, ("subject_id", "study_id") + _LABEL_COLUMNS, path)
    meta = read_table(meta_path)
    require_columns(meta, ("dicom_id", "subject_id", "study_id", "ViewPosition"), meta_path)
    # One label row per study, one metadata row per image: the join gives one row per image.
    frame = meta.merge(labels, on=["subject_id", "study_id"], how="inner", sort=False)
    sid, study = frame["subject_id"].astype(str), frame["study_id"].astype(str)
    out = pd.DataFrame({
        "path": "p" + sid.str[:2] + "/p" + sid + "/s" + study + "/" + frame["dicom_id"].astype(str) + ".jpg",
        "patient_id": sid,
        "study_id": study,
        "dicom_id": frame["dicom_id"].astype(str),
        "view": frame["ViewPosition"],
        "age": np.nan,
        "sex": "",
        "row": np.arange(len(frame)),
    })
    if "StudyDate" in frame.columns:
        out["study_date"] = frame["StudyDate"].to_numpy()
    split_path = files.get("split")
    if split_path is not None:
        split = read_table(split_path)
        require_columns(split, ("dicom_id", "split"), split_path)
        mapping = dict(zip(split["dicom_id"].astype(str), split["split"].astype(str).replace({"validate": "valid"}), strict=True))
        out["split"] = out["dicom_id"].map(mapping).fillna("")
    return pd.concat([out, _label_part(frame)], axis=1)


MIMIC = DatasetSpec(
    name="mimic",
    title="MIMIC-CXR-JPG",
    load=_load_mimic,
    files=(
        LabelFile("labels", "mimic-cxr-2.0.0-chexpert.csv", doc="CheXpert-labeler labels per study"),
        LabelFile("metadata", "mimic-cxr-2.0.0-metadata.csv", doc="one row per image: dicom_id, ViewPosition"),
        LabelFile("split", "mimic-cxr-2.0.0-split.csv", required=False, doc="official train/validate/test split"),
    ),
    url="https://physionet.org/content/mimic-cxr-jpg/2.0.0/",
    licence="PhysioNet Credentialed Health Data License 1.5.0 (credentialed access, DUA).",
    citation="Johnson AEW et al. MIMIC-CXR-JPG. arXiv:1901.07042.",
    **_COMMON,
)


BRAX = DatasetSpec(
    name="brax",
    title="BRAX (Hospital Israelita Albert Einstein, Brazil)",
    columns={"path": "PngPath", "patient_id": "PatientID", "view": "ViewPosition", "age": "PatientAge",
             "sex": "PatientSex"},
    path_prefix="images/",
    # 5-year age groups; the oldest group is written "85 or more".
    values={"age": {"85 or more": 85}},
    files=(LabelFile("labels", "master_spreadsheet_update.csv", doc="BRAX master spreadsheet"),),
    url="https://physionet.org/content/brax/1.1.0/",
    licence="PhysioNet Credentialed Health Data License 1.5.0.",
    citation="Reis EP et al. BRAX. Scientific Data 2022.",
    **_COMMON,
)
