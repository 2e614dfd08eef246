"""The explanation overlay of a film's top finding as a DICOM Secondary Capture in the film's study.

A viewer that shows DICOM only shows the heat map too once it is an image object of the
study: the overlay PNG that ``cxr predict --heatmaps`` draws (the film as scored, the map
blended on top, a caption strip naming label, score and method) becomes an RGB Secondary
Capture (highdicom) with the source's patient and study, in a series of its own
("cxrkit overlays"), with UIDs derived like the report's, so a rerun never duplicates it.
The caption is burned into the pixels (Burned In Annotation YES); it holds no patient data.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CxrkitError, RunFailed
from ..io import detect_format
from ..warning_policy import withheld_warnings
from .results import drop_invalid_age, read_source, save_dataset
from .sr import MANUFACTURER, highdicom_module, model_version, result_uid

if TYPE_CHECKING:
    from pydicom import Dataset

    from ..models import ModelCard

__all__ = ["OverlayWriter", "overlay_image", "OVERLAY_COLUMN"]

OVERLAY_COLUMN = "dicom_overlay"
OVERLAY_SERIES_NUMBER = 9902
OVERLAY_SERIES_DESCRIPTION = "cxrkit overlays"


def overlay_image(source: Dataset, card: ModelCard, png: str | os.PathLike[str]) -> Dataset:
    """The Secondary Capture of an overlay PNG about ``source``."""
    import cv2

    hd = highdicom_module()
    bgr = cv2.imread(str(png), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RunFailed("the overlay image could not be read back")
    sha = model_version(card)
    orientation = list(source.get("PatientOrientation") or [])
    known = len(orientation) == 2 and all(orientation)
    with withheld_warnings():
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source, pixel_array=bgr[:, :, ::-1].copy(), photometric_interpretation="RGB", bits_allocated=8,
            coordinate_system="PATIENT", patient_orientation=tuple(orientation) if known else ("L", "F"),
            series_instance_uid=result_uid(source.StudyInstanceUID, sha, "overlay-series"),
            series_number=OVERLAY_SERIES_NUMBER, sop_instance_uid=result_uid(source.SOPInstanceUID, sha, "overlay"),
            instance_number=int(source.get("InstanceNumber") or 1), manufacturer=MANUFACTURER)
    if not known:  # highdicom needs a value; an unknown orientation stays empty (Type 2), never guessed
        sc.PatientOrientation = None
    if "Laterality" not in sc:  # Type 2C: present, empty (a chest is not a paired body part)
        sc.Laterality = None
    sc.SeriesDescription = OVERLAY_SERIES_DESCRIPTION
    sc.BurnedInAnnotation = "YES"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.ManufacturerModelName = card.name[:64]
    drop_invalid_age(sc)
    return sc


def _top(card: ModelCard, row: dict[str, Any]) -> str | None:
    scored = [(float(row[label]), label) for label in card.trained_labels
              if isinstance(row.get(label), (int, float)) and not math.isnan(float(row[label]))]
    return max(scored)[1] if scored else None


class OverlayWriter:
    """Stores the Secondary Capture of each DICOM row's top-finding overlay (named in the row's
    ``maps`` column, as the heat-map writer fills it) into ``folder``; fills :data:`OVERLAY_COLUMN`."""

    def __init__(self, folder: str | os.PathLike[str], card: ModelCard, maps: str = "heatmaps", durable: bool = False):
        self.folder, self.card, self.maps, self.durable = Path(folder), card, maps, durable

    def cell(self, row: dict[str, Any]) -> str:
        if row.get("status") != "ok":
            return "not written: the film has no result"
        if detect_format(row["file"]) != "dicom":
            return "not written: not a DICOM file, so no study to file it in"
        top = _top(self.card, row)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", top or "").strip("_")
        drawn = [p for p in str(row.get(self.maps) or "").split(";") if p and f".{slug}." in Path(p).name]
        if top is None or not drawn:
            return f"not written: no overlay of the top finding ({top or 'none'}) among the row's maps"
        try:
            sc = overlay_image(read_source(row["file"]), self.card, drawn[0])
            return str(save_dataset(sc, self.folder / f"{sc.SOPInstanceUID}.dcm", self.durable))
        except CxrkitError as exc:
            return f"not written: {exc}"
        except Exception as exc:  # a source highdicom refuses: that film's cell says so, the batch goes on
            return f"not written: unexpected {type(exc).__name__}"

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row[OVERLAY_COLUMN] = self.cell(row)
