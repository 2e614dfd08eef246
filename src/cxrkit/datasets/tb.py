"""Tuberculosis and COVID-19 collections: NLM Montgomery/Shenzhen, TBX11K, ieee8023 COVID-19."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .base import DatasetSpec, LabelFile, read_table, require_columns
from .errors import LabelFileError
from .spec import required_file

__all__ = ["NLM_TB", "TBX11K", "COVID19"]


# -- NLM Montgomery County / Shenzhen ----------------------------------------------------------

def _load_nlm_tb(files: Mapping[str, Path | None]) -> pd.DataFrame:
    folder = required_file(files, "labels")
    if not folder.is_dir():
        raise LabelFileError(folder, "expected the CXR_png folder of the Montgomery or Shenzhen set")
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")
    rows = []
    for i, name in enumerate(names):
        # File names end in _0 (normal) or _1 (tuberculosis), e.g. MCUCXR_0001_0.png.
        match = re.search(r"_([01])\.png$", name, flags=re.IGNORECASE)
        if match is None:
            raise LabelFileError(folder / name, "file name does not end in _0.png or _1.png (the NLM label)")
        rows.append({"path": f"{folder.name}/{name}", "patient_id": name.rsplit("_", 1)[0], "view": "PA",
                     "row": i, "Tuberculosis": float(match.group(1))})
    frame = pd.DataFrame(rows, columns=["path", "patient_id", "view", "row", "Tuberculosis"])
    clinical = folder.parent / "ClinicalReadings"
    if clinical.is_dir():
        ages, sexes = [], []
        for name in names:
            txt = clinical / (Path(name).stem + ".txt")
            text = txt.read_text(errors="replace") if txt.exists() else ""
            age = re.search(r"(\d+)\s*Y", text, flags=re.IGNORECASE)
            sex = re.search(r"\b(male|female|M|F)\b", text, flags=re.IGNORECASE)
            ages.append(float(age.group(1)) if age else np.nan)
            sexes.append(sex.group(1)[0].upper() if sex else "")
        frame["age"], frame["sex"] = ages, sexes
    return frame


NLM_TB = DatasetSpec(
    name="nlm-tb",
    title="NLM tuberculosis sets (Montgomery County, Shenzhen)",
    load=_load_nlm_tb,
    table={"Tuberculosis": "Tuberculosis"},
    kind="columns",
    files=(LabelFile("labels", "CXR_png", doc="the set's CXR_png folder (labels are in the file names)"),),
    url="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets",
    licence="Public domain (NLM); cite Jaeger et al. 2014.",
    citation="Jaeger S et al. Quant Imaging Med Surg 2014.",
)


# -- TBX11K ---------------------------------------------------------------------------------

_TBX_LABELS = ("ActiveTuberculosis", "ObsoletePulmonaryTuberculosis", "PulmonaryTuberculosis")


def _load_tbx11k(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LabelFileError(path, f"cannot read TBX11K COCO annotations ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise LabelFileError(path, f"missing key {key!r}: not a COCO annotation file", (key,))
    categories = {c["id"]: c for c in data["categories"]}
    by_image: dict[int, set[str]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], set()).add(categories[ann["category_id"]]["name"])
    tb_names = {c["name"] for c in data["categories"] if c.get("supercategory") == "Tuberculosis"}
    rows = []
    for i, img in enumerate(data["images"]):
        found = by_image.get(img["id"], set())
        row = {"path": img["file_name"], "patient_id": Path(img["file_name"]).stem, "view": "PA", "row": i,
               "image_id": img["id"]}
        row.update({name: float(name in found) for name in _TBX_LABELS})
        row["Tuberculosis"] = float(bool(found & tb_names))
        rows.append(row)
    return pd.DataFrame(rows)


TBX11K = DatasetSpec(
    name="tbx11k",
    title="TBX11K",
    load=_load_tbx11k,
    table={name: name for name in _TBX_LABELS + ("Tuberculosis",)},
    kind="columns",
    files=(LabelFile("labels", "annotations/json/TBX11K_trainval.json", doc="a COCO json of annotations/json"),),
    url="https://github.com/yun-liu/Tuberculosis",
    licence="CC BY-NC-SA 2.0 (TBX11K); includes Montgomery/Shenzhen images (overlap with nlm-tb).",
    citation="Liu Y et al. Rethinking computer-aided tuberculosis diagnosis. CVPR 2020.",
    notes="Set root to the imgs/ folder; file names are relative to it.",
)


# -- ieee8023 COVID-19 image data collection ---------------------------------------------------

def _load_covid(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    raw = read_table(path)
    require_columns(raw, ("patientid", "finding", "view", "modality", "filename", "sex", "age"), path)
    raw = raw.reset_index(drop=True)
    keep = raw["modality"].astype(str).str.strip().str.lower() == "x-ray"  # the collection also has CT slices
    raw = raw[keep]
    folder = raw["folder"].astype(str) + "/" if "folder" in raw.columns else ""
    tokens = []
    for value in raw["finding"]:
        parts = tuple(t.strip() for t in str(value).split("/")) if isinstance(value, str) else ()
        # "todo" (not yet read) and "Unknown" give no label information.
        tokens.append(None if not parts or set(parts) & {"todo", "Unknown"} else parts)
    return pd.DataFrame({
        "path": folder + raw["filename"].astype(str),
        "patient_id": raw["patientid"].astype(str),
        "view": raw["view"],
        "age": raw["age"],
        "sex": raw["sex"],
        "row": raw.index.to_numpy(),
        "offset": raw["offset"] if "offset" in raw.columns else np.nan,
        "tokens": tokens,
    }).reset_index(drop=True)


COVID19 = DatasetSpec(
    name="covid19",
    title="COVID-19 image data collection (ieee8023)",
    load=_load_covid,
    # The finding column is a path in a hierarchy, e.g. "Pneumonia/Viral/COVID-19": every part is a
    # label; "Pneumonia" is the standard one, the others become labels of their own.
    table={"Pneumonia": "Pneumonia"},
    passthrough=True,
    ignore_tokens=("No Finding",),
    files=(LabelFile("labels", "metadata.csv", doc="metadata.csv of covid-chestxray-dataset"),),
    url="https://github.com/ieee8023/covid-chestxray-dataset",
    licence="Per-image licences listed in metadata.csv (mostly CC BY / CC BY-NC-SA / Apache 2.0).",
    citation="Cohen JP et al. COVID-19 image data collection. arXiv:2006.11988.",
    notes="Set root to the repository root (paths are folder/filename).",
)
