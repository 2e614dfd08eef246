"""One DICOM result per scored DICOM film, written beside the CSV row that holds the same numbers.

A batch run and the DICOM node produce the same objects: :class:`ReportWriter` takes the
finished rows of :func:`cxrkit.predict.run_files` (as its ``complete`` callback, before
they are written), reads each DICOM source's header again (no pixels: a few kB), builds
its report from the row's own values and stores it under its SOP Instance UID. Every row
gets a ``dicom_sr`` cell: the report's path, or ``not written: <why>`` (a PNG has no
study to file a report in; a film that failed has no result). Building from the row keeps
the CSV and the SR equal by construction.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_path
from ..errors import CxrkitError, InvalidArgument, InvalidInput
from ..io import detect_format
from ..warning_policy import withheld_warnings
from .sr import age_report, findings_report

if TYPE_CHECKING:
    from pydicom import Dataset

    from ..models import ModelCard

__all__ = ["ReportWriter", "KINDS", "COLUMN", "read_source", "save_dataset", "drop_invalid_age"]

log = logging.getLogger(__name__)

#: what a report holds: ``findings`` (pathology scores, :class:`~cxrkit.predict.Predictor` rows)
#: or ``age`` (``cxr_age`` and ``cxr_age_sd``, :class:`~cxrkit.age.AgeEstimator` rows)
KINDS = ("findings", "age")
#: the row column naming each film's report, or why there is none
COLUMN = "dicom_sr"
#: Patient's Age (AS) as DICOM allows it: three digits and a unit
_AGE_UNITS = ("D", "W", "M", "Y")


def read_source(path: str | os.PathLike[str]) -> Dataset:
    """The header of a DICOM source (no pixel data), for filing a result beside it."""
    import pydicom

    try:
        with withheld_warnings():
            return pydicom.dcmread(path, stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise InvalidInput(f"cannot read the DICOM header again: {type(exc).__name__}") from None


def drop_invalid_age(sr: Dataset) -> None:
    """Drop a Patient's Age that breaks its VR (``62`` for ``062Y``), copied from a faulty source: a
    wrong-format value makes the whole report invalid; guessing its unit would invent data."""
    age = str(sr.get("PatientAge", "") or "")
    if age and not (len(age) == 4 and age[:3].isdigit() and age[3] in _AGE_UNITS):
        del sr.PatientAge


def save_dataset(ds: Dataset, path: Path, durable: bool) -> Path:
    """Write ``ds`` as a DICOM file (preamble, file meta) atomically: never half a file under ``path``."""
    with atomic_path(path, durable=durable) as temp, withheld_warnings():
        ds.save_as(temp, enforce_file_format=True)
    return path


class ReportWriter:
    """Builds and stores the structured report of each scored DICOM row (a ``complete`` callback of
    :func:`cxrkit.predict.run_files`), filling the row's :data:`COLUMN`.

    ``kind`` is one of :data:`KINDS`; ``calibrated`` says whether the scores were rescaled
    to the card's operating points (``Predictor.calibrated``). ``durable`` syncs each file
    to disk before it counts as written (the DICOM node's spool needs it; a batch run's
    row is its record, so a rerun redoes a missing file).
    """

    def __init__(self, folder: str | os.PathLike[str], card: ModelCard, *, kind: str = "findings",
                 calibrated: bool = True, durable: bool = False):
        if kind not in KINDS:
            raise InvalidArgument(f"report kind must be one of {KINDS}, got {kind!r}")
        self.folder = Path(folder)
        self.card, self.kind, self.calibrated, self.durable = card, kind, calibrated, durable

    def report(self, source: Dataset, row: dict[str, Any]) -> Dataset:
        """The report of one ok row about ``source``."""
        with withheld_warnings():
            if self.kind == "age":
                sr = age_report(source, self.card, row["cxr_age"], row.get("cxr_age_sd"))
            else:
                scores = {label: row.get(label) for label in self.card.trained_labels}
                sr = findings_report(source, self.card, scores, calibrated=self.calibrated)
        drop_invalid_age(sr)
        return sr

    def write(self, source: Dataset, row: dict[str, Any]) -> Path:
        """Store the report of ``row`` about ``source`` as ``<folder>/<SOP Instance UID>.dcm``."""
        sr = self.report(source, row)
        return save_dataset(sr, self.folder / f"{sr.SOPInstanceUID}.dcm", self.durable)

    def cell(self, row: dict[str, Any]) -> str:
        """The row's report path, or ``not written: <why>``; never raises for one film."""
        if row.get("status") != "ok":
            return "not written: the film has no result"
        fmt = detect_format(row["file"])
        if fmt != "dicom":
            return f"not written: not a DICOM file ({fmt or 'unknown format'}), so no study to file it in"
        try:
            return str(self.write(read_source(row["file"]), row))
        except CxrkitError as exc:
            return f"not written: {exc}"
        except Exception as exc:  # a header highdicom refuses: that film's cell says so, the batch goes on
            log.debug("report failed", exc_info=True)
            return f"not written: unexpected {type(exc).__name__}"

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row[COLUMN] = self.cell(row)
