"""OpenI / Indiana University chest X-ray collection: labels are the reports' MeSH terms.

Each report (``uId``) has automatic MeSH terms and one or more images; a term counts
only when it is listed (lower-cased, exact) in :data:`OPENI_TABLE`.
"""

from __future__ import annotations

import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .base import DatasetSpec, LabelFile, read_table, require_columns
from .errors import LabelFileError
from .harmonise import label_table
from .spec import required_file

__all__ = ["OPENI", "OPENI_TABLE", "read_openi_reports"]


OPENI_TABLE = label_table(
    ("Atelectasis", ("atelectasis", "atelectases", "pulmonary atelectasis", "chronic atelectasis",
                     "discoid atelectasis",
                     "focal atelectasis", "obstructive atelectasis", "patchy atelectasis", "plate-like atelectasis")),
    ("Fibrosis", ("fibrosis", "fibroses", "pulmonary fibrosis", "pulmonary fibroses", "chronic fibrosis",
                  "diffuse fibrosis", "interstitial fibrosis")),  # not cystic fibrosis (a genetic disease)
    ("Pneumonia", ("pneumonia", "acute pneumonia", "atypical pneumonias", "left lower lobe pneumonia",
                   "left upper lobe pneumonia", "lower lobe pneumonia", "multilobar pneumonia",
                   "peribronchial pneumonia",
                   "pneumonia right lower lobe", "postobstructive pneumonia", "recurrent pneumonia",
                   "right lower lobe pneumonia", "right upper lobe pneumonia", "viral pneumonias", "pneumonia, viral",
                   "pneumonia, mycoplasma", "mycoplasma pneumonia", "mycoplasma pneumoniae")),
    ("Effusion", ("effusion", "pleural effusion", "pleural effusions", "bilateral pleural effusion",
                  "left-sided pleural effusion", "right-sided pleural effusion", "loculated effusion",
                  "pulmonary effusion")),  # not pericardial effusion
    ("Lung Lesion", ("lesion", "mass lesion")),
    ("Cardiomegaly", ("cardiomegaly",)),
    ("Calcified Granuloma", ("calcified granuloma",)),
    ("Fracture", ("fracture", "fractures, bone", "rib fracture", "rib fractures", "fourth rib fracture",
                  "clavicular fracture", "humeral fracture", "humeral fractures", "spinal fractures",
                  "vertebral fracture", "pathologic fractures", "fracture, pathologic", "fractures, pathologic",
                  "displaced fractures", "non-displaced fracture", "multiple fractures", "rotated fracture",
                  "stable fracture", "comminuted fracture", "fracture, comminuted", "hip fractures",
                  "femoral neck fractures", "fracture-dislocation")),
    ("Edema", ("edema", "edemas", "pulmonary edema", "interstitial pulmonary edema", "alveolar edema",
               "chronic edema")),
    ("Granuloma", ("granuloma", "granulomas", "calcified granuloma", "apical granuloma", "lung granuloma",
                   "pulmonary granuloma")),
    ("Emphysema", ("emphysema", "emphysemas", "pulmonary emphysema", "centrilobular emphysema",
                   "bullous emphysema")),  # not subcutaneous emphysema
    ("Hernia", ("hernia, hiatal", "hernia, hiatus", "hiatal hernia", "hiatus hernia", "large hiatal hernia",
                "hernia, diaphragmatic", "bochdalek hernia", "morgagni hernia", "hernias")),
    ("Mass", ("mass", "mass lesion", "anterior mediastinal masses", "mediastinal mass", "paratracheal mass")),
    ("Nodule", ("nodule", "multiple pulmonary nodules", "solitary pulmonary nodule")),
    ("Lung Opacity", ("opacity",)),
    ("Infiltration", ("infiltrates", "infiltrate")),
    ("Pleural_Thickening", ("pleural thickening",)),
    ("Pneumothorax", ("pneumothorax", "hydropneumothorax", "hemopneumothorax")),
)


def read_openi_reports(path: str | Path) -> pd.DataFrame:
    """One row per image of ``NLMCXR_reports.tgz``: uid, image id, its report's automatic MeSH terms."""
    rows = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.name.endswith(".xml") else None
                if handle is None:  # not a report, or a folder named like one
                    continue
                root = ET.parse(handle).getroot()
                uid_node = root.find("uId")
                if uid_node is None:
                    continue
                uid = uid_node.attrib["id"]
                found = {(n.text or "").strip().lower() for n in root.findall(".//MeSH/automatic")}
                terms = tuple(sorted(found - {""}))
                for image in root.findall(".//parentImage"):
                    rows.append((uid, image.attrib["id"], terms))
    except (tarfile.TarError, ET.ParseError, OSError) as exc:
        raise LabelFileError(path, f"cannot read the OpenI report archive ({exc})") from None
    return pd.DataFrame(rows, columns=["uid", "image_id", "tokens"])


def _load_openi(files: Mapping[str, Path | None]) -> pd.DataFrame:
    reports = read_openi_reports(required_file(files, "labels"))
    out = pd.DataFrame({
        "path": reports["image_id"] + ".png",
        "image_id": reports["image_id"],
        # OpenI is de-identified per report: the report id is the finest grouping available.
        "patient_id": reports["uid"],
        "row": np.arange(len(reports)),
        # A report without automatic MeSH terms is a normal study: every label negative.
        "tokens": reports["tokens"],
    })
    dicom = files.get("dicom_metadata")
    if dicom is not None:
        meta = read_table(dicom, low_memory=False)
        require_columns(meta, ("imageid", "View Position"), dicom)
        meta = meta.drop_duplicates("imageid").set_index("imageid")
        out["view"] = out["image_id"].map(meta["View Position"])
        if "Patient's Sex" in meta.columns:
            out["sex"] = out["image_id"].map(meta["Patient's Sex"])
    tsne = files.get("tsne_view")
    if tsne is not None:
        views = read_table(tsne)
        require_columns(views, ("imageid", "tsne-view"), tsne)
        out["tsne_view"] = out["image_id"].map(views.drop_duplicates("imageid").set_index("imageid")["tsne-view"])
    return out


OPENI = DatasetSpec(
    name="openi",
    title="OpenI / Indiana University chest X-rays",
    load=_load_openi,
    table=OPENI_TABLE,
    files=(
        LabelFile("labels", "NLMCXR_reports.tgz", doc="the report XML archive"),
        LabelFile("dicom_metadata", "nlmcxr_dicom_metadata.csv", required=False, doc="views from DICOM headers"),
        LabelFile("tsne_view", "nlmcxr_tsne_pa.csv", required=False, doc="image-derived PA/L views"),
    ),
    url="https://openi.nlm.nih.gov/faq#collection",
    licence="CC BY-NC-ND 4.0 (Indiana University / NLM Open-i).",
    citation="Demner-Fushman D et al. JAMIA 2016.",
)
