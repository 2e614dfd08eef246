"""NIH ChestX-ray14 and Google's radiologist relabels of it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import NIH_PATHOLOGIES
from .base import DatasetSpec, LabelFile, read_table, require_columns
from .errors import LabelFileError
from .localisation import Localisation
from .spec import required_file

__all__ = ["NIH", "NIH_GOOGLE", "NIH_TABLE", "GOOGLE_TABLE", "read_nih_boxes"]

#: NIH spells its 14 findings exactly like the standard vocabulary; "No Finding" maps to nothing.
NIH_TABLE: dict[str, str] = {name: name for name in NIH_PATHOLOGIES}

_NIH_COLUMNS = ("Image Index", "Finding Labels", "Patient ID", "Patient Age", "View Position")


def _nih_frame(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "Patient Gender" not in frame.columns and "Patient Sex" in frame.columns:
        frame = frame.rename(columns={"Patient Sex": "Patient Gender"})
    require_columns(frame, _NIH_COLUMNS + ("Patient Gender",), path)
    labels = frame["Finding Labels"]
    return pd.DataFrame({
        "path": frame["Image Index"].astype(str),
        "patient_id": frame["Patient ID"].astype(str),
        "view": frame["View Position"],
        "age": frame["Patient Age"],
        "sex": frame["Patient Gender"],
        "row": np.arange(len(frame)),
        "tokens": [None if pd.isna(v) else tuple(t.strip() for t in str(v).split("|")) for v in labels],
        "follow_up": frame.get("Follow-up #"),
    })


def _official_split(frame: pd.DataFrame, files: Mapping[str, Path | None]) -> pd.Series:
    split = pd.Series("", index=frame.index, dtype=object)
    for key, name in (("train_val_list", "train"), ("test_list", "test")):
        path = files.get(key)
        if path is not None:
            names = set(Path(path).read_text().split())
            split[frame["path"].isin(names)] = name
    return split


#: every token NIH writes in "Finding Labels": its 14 findings and "No Finding"
NIH_TOKENS = frozenset(NIH_PATHOLOGIES) | {"No Finding"}


def _refuse_unknown_tokens(frame: pd.DataFrame, path: Path) -> None:
    """NIH's vocabulary is closed, so a token outside it is a damaged or foreign file: ignoring it
    (as open-vocabulary sources like PadChest must) would drop a finding and mark a film with, say,
    "Effusion " as healthy, in training and evaluation alike. Refused instead, naming its row."""
    for row, tokens in zip(frame["row"].tolist(), frame["tokens"].tolist(), strict=True):
        for token in tokens or ():
            if token not in NIH_TOKENS:
                raise LabelFileError(path, f"row {int(row) + 2}: unknown finding {token!r}; expected one of "
                                           f"{', '.join(NIH_PATHOLOGIES)} or 'No Finding'")


def _load_nih(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    out = _nih_frame(read_table(path), path)
    _refuse_unknown_tokens(out, path)
    if files.get("train_val_list") or files.get("test_list"):
        out["split"] = _official_split(out, files)
    bbox = files.get("bbox")
    if bbox is not None:
        boxes = read_nih_boxes(bbox)
        out["has_boxes"] = out["path"].isin(set(boxes["path"]))
    return out


def read_nih_boxes(path: str | Path) -> pd.DataFrame:
    """NIH's ``BBox_List_2017.csv``: one row per box (path, label, x, y, w, h) in 1024 px coordinates.

    The file's header is malformed (``Bbox [x,y,w,h]`` spans four columns), so columns are
    taken by position; its "Infiltrate" is the standard "Infiltration".
    """
    raw = read_table(Path(path), header=None, skiprows=1)
    if raw.shape[1] < 6:
        raise LabelFileError(path, f"expected at least 6 columns (image, label, x, y, w, h), found {raw.shape[1]}")
    out = raw.iloc[:, :6].copy()
    out.columns = ["path", "label", "x", "y", "w", "h"]
    out["label"] = out["label"].replace({"Infiltrate": "Infiltration"})
    return out


NIH = DatasetSpec(
    name="nih",
    title="NIH ChestX-ray14",
    load=_load_nih,
    table=NIH_TABLE,
    # Boxes are in the 1,024 px PNGs of the release (all square), not in the DICOM sizes of the
    # OriginalImage[Width,Height] columns; its header spans "Bbox [x,y,w,h]" over four columns.
    localisation=Localisation(file="bbox", image="Image Index", match="path", label="Finding Label",
                              renames={"Infiltrate": "Infiltration"}, boxes=("Bbox [x", "y", "w", "h]"),
                              grid=(1024, 1024)),
    files=(
        LabelFile("labels", "Data_Entry_2017_v2020.csv", doc="Data_Entry_2017(_v2020).csv"),
        LabelFile("bbox", "BBox_List_2017.csv", required=False, doc="bounding boxes of 880 images"),
        LabelFile("train_val_list", "train_val_list.txt", required=False, doc="official train/val image list"),
        LabelFile("test_list", "test_list.txt", required=False, doc="official test image list"),
    ),
    url="https://nihcc.app.box.com/v/ChestXray-NIHCC",
    licence="Unrestricted use; cite Wang et al. CVPR 2017 and acknowledge the NIH Clinical Center.",
    citation="Wang X et al. ChestX-ray8. CVPR 2017.",
)

#: Google's four adjudicated findings; "Nodule or mass" has no single standard label.
GOOGLE_TABLE: dict[str, str] = {
    "Fracture": "Fracture",
    "Pneumothorax": "Pneumothorax",
    "Airspace opacity": "Lung Opacity",
    "Nodule or mass": "Nodule/Mass",
}


def _load_google(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    raw = read_table(path)
    require_columns(raw, tuple(GOOGLE_TABLE) + ("Set Id",), path)
    out = _nih_frame(raw, path).drop(columns=["tokens"])
    for col in GOOGLE_TABLE:
        values = raw[col].astype(str).str.strip().str.upper()
        out[col] = np.select([values == "YES", values == "NO"], [1.0, 0.0], np.nan)
    out["split"] = raw["Set Id"].astype(str).replace({"val": "valid"})
    return out


NIH_GOOGLE = DatasetSpec(
    name="nih-google",
    title="NIH ChestX-ray14, Google radiologist-adjudicated relabels",
    load=_load_google,
    table=GOOGLE_TABLE,
    kind="columns",
    files=(LabelFile("labels", "google2019_nih-chest-xray-labels.csv", doc="test + validation label CSV"),),
    url="https://cloud.google.com/healthcare/docs/resources/public-datasets/nih-chest",
    licence="CC BY 4.0 (labels); images are NIH ChestX-ray14.",
    citation="Majkowska A et al. Radiology 2020.",
)
