"""Coded concepts of cxrkit's DICOM results: each label's finding code, and cxrkit's private scheme.

A viewer or a PACS report template matches findings by code, not by the text a model
prints, so each label carries a code from a standard terminology wherever one is in the
DICOM standard's own code tables (as pydicom ships them): SNOMED CT (``SCT``) first, the
DICOM chest-CAD codes (``DCM``, CID 6101-6104) next. A label with no such code gets one
from cxrkit's private scheme ``99CXRKIT`` (the ``99`` prefix marks a private coding
scheme in DICOM PS3.16 section 8.2); docs/pacs.md lists every code of it. The tables are
data: a model with a label outside them gets a private code named after the label.
"""

from __future__ import annotations

import re

__all__ = ["PRIVATE_SCHEME", "PRIVATE_SCHEME_NAME", "FINDING_CODES", "CXR_AGE", "finding_code", "private_code"]

#: designator of cxrkit's private coding scheme (PS3.16 8.2: private designators start with "99")
PRIVATE_SCHEME = "99CXRKIT"
PRIVATE_SCHEME_NAME = "cxrkit private codes for chest radiograph findings"

#: label -> (value, scheme, meaning); standard codes are those in pydicom.sr.codedict.codes
FINDING_CODES: dict[str, tuple[str, str, str]] = {
    "Pneumothorax": ("36118008", "SCT", "Pneumothorax"),
    "Edema": ("19242006", "SCT", "Pulmonary edema"),
    "Fibrosis": ("112674009", "SCT", "Fibrosis"),
    "Effusion": ("60046008", "SCT", "Pleural effusion"),
    "Cardiomegaly": ("287272002", "SCT", "Cardiomegaly"),
    "Nodule": ("27925004", "SCT", "Nodule"),
    "Mass": ("4147007", "SCT", "Mass"),
    "Infiltration": ("112121", "DCM", "Infiltrate"),
    "Lung Opacity": ("112033", "DCM", "Abnormal opacity"),
    # no code for these in the standard's tables: cxrkit's private scheme
    "Atelectasis": ("ATELECTASIS", PRIVATE_SCHEME, "Atelectasis"),
    "Consolidation": ("CONSOLIDATION", PRIVATE_SCHEME, "Consolidation"),
    "Emphysema": ("EMPHYSEMA", PRIVATE_SCHEME, "Emphysema"),
    "Pneumonia": ("PNEUMONIA", PRIVATE_SCHEME, "Pneumonia"),
    "Pleural_Thickening": ("PLEURAL_THICK", PRIVATE_SCHEME, "Pleural thickening"),
    "Hernia": ("HERNIA", PRIVATE_SCHEME, "Hernia"),
    "Lung Lesion": ("LUNG_LESION", PRIVATE_SCHEME, "Lung lesion"),
    "Fracture": ("FRACTURE", PRIVATE_SCHEME, "Fracture"),
    "Enlarged Cardiomediastinum": ("ENLARGED_CARDIOM", PRIVATE_SCHEME, "Enlarged cardiomediastinum"),
}

#: the CXR-Age estimate: no standard concept means "age as it looks on a radiograph"
CXR_AGE = ("CXR_AGE", PRIVATE_SCHEME, "Chest X-ray age")


def private_code(label: str) -> tuple[str, str, str]:
    """A private code for a label outside :data:`FINDING_CODES` (an extra label of a custom model):
    the label upper-cased, runs of other characters as ``_``, cut to 16 characters (SH)."""
    value = re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_")[:16] or "LABEL"
    return value, PRIVATE_SCHEME, label[:64]


def finding_code(label: str) -> tuple[str, str, str]:
    """``(value, scheme, meaning)`` of a label's finding."""
    return FINDING_CODES.get(label) or private_code(label)
