"""Challenge datasets with box or mask annotations: RSNA Pneumonia, SIIM-ACR Pneumothorax, VinDr-CXR.

Their label files hold one row per *annotation*; the loaders fold them into one row per
image (positive if any annotation is) and keep the annotations for :func:`boxes_for` and
:func:`rle_decode`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .base import DatasetSpec, LabelFile, read_table, require_columns
from .localisation import Localisation, rle_decode
from .spec import required_file

__all__ = ["RSNA", "SIIM", "VINDR", "VINDR_TABLE", "rle_decode", "read_rsna_boxes"]


# -- RSNA Pneumonia Detection Challenge --------------------------------------------------------

def _load_rsna(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    raw = read_table(path)
    require_columns(raw, ("patientId", "x", "y", "width", "height", "Target"), path)
    # Rows are boxes; an image is positive if any of its rows is. Order of first appearance kept.
    first = raw.drop_duplicates("patientId").index.to_numpy()
    target = raw.groupby("patientId", sort=False)["Target"].max()
    ids = raw["patientId"].iloc[first].astype(str).to_numpy()
    out = pd.DataFrame({
        "image_id": ids,
        "path": [i + ".dcm" for i in ids],
        # Each image is its own patientId in the challenge release; the NIH patient is not given.
        "patient_id": ids,
        "row": first,
        "Target": target.loc[ids].to_numpy(dtype=float),
        "has_boxes": raw.groupby("patientId", sort=False)["x"].count().loc[ids].to_numpy() > 0,
    })
    headers = files.get("headers")
    if headers is not None:
        head = read_table(headers)
        require_columns(head, ("PatientID", "ViewPosition", "PatientAge", "PatientSex"), headers)
        head = head.drop_duplicates("PatientID").set_index("PatientID")
        out["view"] = out["image_id"].map(head["ViewPosition"])
        out["age"] = out["image_id"].map(head["PatientAge"])
        out["sex"] = out["image_id"].map(head["PatientSex"])
    return out


def read_rsna_boxes(path: str | Path) -> pd.DataFrame:
    """The RSNA boxes (image_id, x, y, w, h, in 1024 px coordinates) of positive images."""
    raw = read_table(Path(path))
    require_columns(raw, ("patientId", "x", "y", "width", "height"), path)
    boxes = raw.dropna(subset=["x"])
    return pd.DataFrame({"image_id": boxes["patientId"], "x": boxes["x"], "y": boxes["y"],
                         "w": boxes["width"], "h": boxes["height"]}).reset_index(drop=True)


RSNA = DatasetSpec(
    name="rsna",
    title="RSNA Pneumonia Detection Challenge",
    load=_load_rsna,
    # The challenge's Target marks "Lung Opacity" boxes, read as pneumonia; both labels share it.
    table={"Target": ("Pneumonia", "Lung Opacity")},
    kind="columns",
    localisation=Localisation(image="patientId", constant_label="Target", boxes=("x", "y", "width", "height"),
                              grid=(1024, 1024)),  # the challenge's DICOMs are all 1024 x 1024
    files=(
        LabelFile("labels", "stage_2_train_labels.csv", doc="stage_2_train_labels.csv (one row per box)"),
        LabelFile("headers", "stage_2_train_images_dicom_headers.csv", required=False,
                  doc="DICOM headers (view, age, sex) as shipped by torchxrayvision"),
    ),
    url="https://www.kaggle.com/c/rsna-pneumonia-detection-challenge",
    licence="Kaggle competition terms; images are NIH ChestX-ray14 (unrestricted use).",
    citation="Shih G et al. Radiology: AI 2019.",
)


# -- SIIM-ACR Pneumothorax Segmentation -----------------------------------------------------------

def _load_siim(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    raw = read_table(path)
    raw.columns = [c.strip() for c in raw.columns]
    require_columns(raw, ("ImageId", "EncodedPixels"), path)
    positive = raw["EncodedPixels"].astype(str).str.strip() != "-1"
    first = raw.drop_duplicates("ImageId").index.to_numpy()
    ids = raw["ImageId"].iloc[first].astype(str).to_numpy()
    pos = positive.groupby(raw["ImageId"], sort=False).any().loc[ids].to_numpy()
    masks = positive.groupby(raw["ImageId"], sort=False).sum().loc[ids].to_numpy()
    return pd.DataFrame({
        "image_id": ids,
        "path": [i + ".dcm" for i in ids],
        # The RLE file carries no patient id (it is only in the DICOM header): each image stands alone.
        "patient_id": ids,
        "view": "UNKNOWN",
        "row": first,
        "Pneumothorax": pos.astype(float),
        "mask_count": masks,
    })


SIIM = DatasetSpec(
    name="siim",
    title="SIIM-ACR Pneumothorax Segmentation",
    load=_load_siim,
    table={"Pneumothorax": "Pneumothorax"},
    kind="columns",
    localisation=Localisation(image="ImageId", constant_label="Pneumothorax", rle="EncodedPixels", grid=(1024, 1024)),
    files=(LabelFile("labels", "train-rle.csv", doc="train-rle.csv (one row per mask; -1 = none)"),),
    url="https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation",
    licence="Kaggle competition terms (images from NIH ChestX-ray14).",
    notes="Images are DICOM files; set root to the folder holding <ImageId>.dcm (flat).",
)


# -- VinDr-CXR ----------------------------------------------------------------------------------

VINDR_TABLE: dict[str, str] = {
    "Aortic enlargement": "Aortic Enlargement",
    "Atelectasis": "Atelectasis",
    "Calcification": "Calcification",
    "Cardiomegaly": "Cardiomegaly",
    "Consolidation": "Consolidation",
    "ILD": "ILD",
    "Infiltration": "Infiltration",
    "Lung Opacity": "Lung Opacity",
    "Nodule/Mass": "Nodule/Mass",
    "Other lesion": "Other Lesion",
    "Pleural effusion": "Effusion",
    "Pleural thickening": "Pleural_Thickening",
    "Pneumothorax": "Pneumothorax",
    "Pulmonary fibrosis": "Fibrosis",
}


def _load_vindr(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    raw = read_table(path)
    require_columns(raw, ("image_id", "class_name"), path)
    # Three radiologists read each training image; a finding counts if any of them marked it.
    first = raw.drop_duplicates("image_id").index.to_numpy()
    ids = raw["image_id"].iloc[first].astype(str).to_numpy()
    tokens = raw.groupby("image_id", sort=False)["class_name"].agg(lambda s: tuple(sorted(set(s.astype(str)))))
    return pd.DataFrame({
        "image_id": ids,
        "path": [i + ".dicom" for i in ids],
        "patient_id": ids,  # the release gives no patient id
        "view": "UNKNOWN",
        "row": first,
        "tokens": tokens.loc[ids].to_list(),
    })


VINDR = DatasetSpec(
    name="vindr",
    title="VinDr-CXR",
    load=_load_vindr,
    table=VINDR_TABLE,
    # boxes are in the pixels of each released DICOM (sizes vary), one set per radiologist
    localisation=Localisation(image="image_id", label="class_name", boxes=("x_min", "y_min", "x_max", "y_max"),
                              format="xyxy"),
    files=(LabelFile("labels", "train.csv", doc="train.csv (Kaggle) or annotations_train.csv (PhysioNet)"),),
    url="https://physionet.org/content/vindr-cxr/1.0.0/",
    licence="PhysioNet Restricted Health Data License 1.5.0 (PhysioNet release); Kaggle competition terms.",
    citation="Nguyen HQ et al. VinDr-CXR. Scientific Data 2022.",
)
