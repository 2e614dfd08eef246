"""PadChest (BIMCV, Alicante): report-mined labels, matched as exact tokens.

Each image lists its findings as a Python-literal list of lower-case terms. The table
below names every term that counts as a standard (or extra) label; a term not listed is
ignored. Rows whose list is empty (``['']``) or absent carry no label information and are
unknown (NaN), not negative.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .base import DatasetSpec, LabelFile, read_table, require_columns
from .harmonise import label_table
from .spec import required_file

__all__ = ["PADCHEST", "PADCHEST_TABLE", "PADCHEST_BROKEN_FILES"]


PADCHEST_TABLE = label_table(
    ("Atelectasis", ("atelectasis", "laminar atelectasis", "lobar atelectasis", "segmental atelectasis",
                     "round atelectasis", "total atelectasis", "atelectasis basal")),
    ("Consolidation", ("consolidation", "air bronchogram")),
    ("Infiltration", ("infiltrates", "interstitial pattern", "ground glass pattern", "reticular interstitial pattern",
                      "reticulonodular interstitial pattern", "alveolar pattern", "consolidation", "air bronchogram")),
    ("Pneumothorax", ("pneumothorax", "hydropneumothorax")),
    ("Edema", ("pulmonary edema",)),
    ("Emphysema", ("emphysema",)),  # not "subcutaneous emphysema": air under the skin
    ("Fibrosis", ("pulmonary fibrosis",)),
    ("Effusion", ("pleural effusion", "loculated pleural effusion", "loculated fissural effusion")),  # not pericardial
    ("Pneumonia", ("pneumonia", "atypical pneumonia")),
    ("Pleural_Thickening", ("pleural thickening", "apical pleural thickening", "calcified pleural thickening")),
    ("Cardiomegaly", ("cardiomegaly",)),
    ("Nodule", ("nodule", "multiple nodules")),  # not "pseudonodule": by definition not a nodule
    ("Mass", ("mass", "pulmonary mass", "mediastinal mass", "pleural mass")),  # not soft-tissue / breast mass
    ("Hernia", ("hiatal hernia",)),
    ("Fracture", ("fracture", "rib fracture", "clavicle fracture", "humeral fracture", "vertebral fracture",
                  "callus rib fracture")),
    ("Granuloma", ("granuloma", "calcified granuloma")),
    ("Flattened Diaphragm", ("flattened diaphragm",)),
    ("Bronchiectasis", ("bronchiectasis",)),
    ("Aortic Elongation", ("aortic elongation", "descendent aortic elongation", "ascendent aortic elongation",
                           "supra aortic elongation")),
    ("Scoliosis", ("scoliosis",)),
    ("Hilar Enlargement", ("hilar enlargement", "vascular hilar enlargement", "adenopathy", "calcified adenopathy",
                           "calcified mediastinal adenopathy", "pulmonary artery enlargement")),
    ("Tuberculosis", ("tuberculosis",)),  # not "tuberculosis sequelae": healed, inactive disease
    ("Air Trapping", ("air trapping",)),
    ("Costophrenic Angle Blunting", ("costophrenic angle blunting",)),
    ("Aortic Atheromatosis", ("aortic atheromatosis",)),
    ("Hemidiaphragm Elevation", ("hemidiaphragm elevation",)),
    ("Support Devices", ("dual chamber device", "single chamber device", "electrical device", "pacemaker")),
    ("Tube", ("NSG tube", "chest drain tube", "endotracheal tube", "gastrostomy tube", "tracheostomy tube",
              "ventriculoperitoneal drain tube", "nephrostomy tube", "double J stent")),
)

#: Images of the public release that are missing or cannot be decoded (truncated PNGs).
PADCHEST_BROKEN_FILES: tuple[str, ...] = (
    "216840111366964012819207061112010307142602253_04-014-084.png",
    "216840111366964012989926673512011074122523403_00-163-058.png",
    "216840111366964012959786098432011033083840143_00-176-115.png",
    "216840111366964012558082906712009327122220177_00-102-064.png",
    "216840111366964012339356563862009072111404053_00-043-192.png",
    "216840111366964013076187734852011291090445391_00-196-188.png",
    "216840111366964012373310883942009117084022290_00-064-025.png",
    "216840111366964012283393834152009033102258826_00-059-087.png",
    "216840111366964012373310883942009170084120009_00-097-074.png",
    "216840111366964012819207061112010315104455352_04-024-184.png",
    "216840111366964012819207061112010306085429121_04-020-102.png",
    "216840111366964012989926673512011083134050913_00-168-009.png",
    "216840111366964012373310883942009152114636712_00-102-045.png",
    "216840111366964012819207061112010281134410801_00-129-131.png",
    "216840111366964012487858717522009280135853083_00-075-001.png",
    "216840111366964012989926673512011151082430686_00-157-045.png",
    "216840111366964013686042548532013208193054515_02-026-007.png",
    "216840111366964013590140476722013058110301622_02-056-111.png",
    "216840111366964013590140476722013043111952381_02-065-198.png",
    "216840111366964013829543166512013353113303615_02-092-190.png",
    "216840111366964013962490064942014134093945580_01-178-104.png",
)


_TERM = re.compile(r"'([^']*)'")


def parse_terms(value: object) -> tuple[str, ...] | None:
    """``"['a', ' b', '']"`` -> ``('a', 'b')``; ``None`` when the row has no terms at all.

    The column holds Python list literals of quoted terms (no term contains a quote); a
    regular expression reads them 10x faster than ``ast.literal_eval`` with the same result
    on every row of the release (checked in the tests).
    """
    if not isinstance(value, str):
        return None
    terms = tuple(dict.fromkeys(t.strip() for t in _TERM.findall(value) if t.strip()))
    return terms or None


def _load_padchest(files: Mapping[str, Path | None]) -> pd.DataFrame:
    path = required_file(files, "labels")
    columns = ("ImageID", "ImageDir", "PatientID", "PatientBirth", "PatientSex_DICOM", "Projection",
               "StudyDate_DICOM", "StudyID", "Labels")
    require_columns(read_table(path, nrows=0), columns, path)
    raw = read_table(path, usecols=list(columns), dtype={"Labels": object, "ImageID": object})
    parsed = {v: parse_terms(v) for v in raw["Labels"].dropna().unique()}  # ~30k distinct lists in 160k rows
    view = raw["Projection"].replace({"AP_horizontal": "AP Supine"})
    year = pd.to_numeric(raw["StudyDate_DICOM"].astype(str).str[:4], errors="coerce")
    out = pd.DataFrame({
        "path": raw["ImageDir"].astype(str) + "/" + raw["ImageID"].astype(str),
        "image_id": raw["ImageID"].astype(str),
        "patient_id": raw["PatientID"].astype(str),
        "study_id": raw["StudyID"].astype(str),
        "view": view,
        "age": year - pd.to_numeric(raw["PatientBirth"], errors="coerce"),
        "birth_year": pd.to_numeric(raw["PatientBirth"], errors="coerce"),
        "sex": raw["PatientSex_DICOM"],
        "row": np.arange(len(raw)),
        "tokens": [t if isinstance(t, tuple) else None for t in raw["Labels"].map(parsed)],
    })
    return out[~out["image_id"].isin(PADCHEST_BROKEN_FILES)].reset_index(drop=True)


PADCHEST = DatasetSpec(
    name="padchest",
    title="PadChest (BIMCV)",
    load=_load_padchest,
    table=PADCHEST_TABLE,
    files=(LabelFile("labels", "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"),),
    url="https://bimcv.cipf.es/bimcv-projects/padchest/",
    licence="PadChest Dataset Research Use Agreement (non-commercial); cite Bustos et al. 2020.",
    citation="Bustos A et al. PadChest. Medical Image Analysis 2020.",
    notes="Images live in numbered sub-folders (ImageDir); paths are ImageDir/ImageID. "
          "Known-broken images of the release are dropped.",
)
