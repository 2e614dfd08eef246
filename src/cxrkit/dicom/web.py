"""DICOMweb in and out (dicomweb-client): QIDO-RS finds a study's instances, WADO-RS fetches them,
STOW-RS stores the reports back.

A hospital that speaks HTTP rather than DIMSE (a cloud PACS, a vendor-neutral archive)
names its server as ``dicomweb+http://host/dicom-web``; the ``dicomweb+`` prefix tells a
server apart from a folder. :func:`predict_study` is ``cxr predict`` on a remote study:
the instances are fetched into a work folder (each atomically, under its SOP Instance
UID), scored by :func:`cxrkit.predict.run_files` with the :class:`~.results.ReportWriter`
beside it, and the reports are stored back by STOW-RS.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CxrkitError, InvalidArgument, MissingDependency, MissingFile
from ..predict import OutputSpec, Runner, RunSummary, output_columns, run_files
from .results import COLUMN, ReportWriter, save_dataset

__all__ = ["PREFIX", "dicomweb_url", "fetch_instances", "store_instances", "predict_study"]

log = logging.getLogger(__name__)

PREFIX = "dicomweb+"
_SERIES, _INSTANCE, _SOP_CLASS, _MODALITY = "0020000E", "00080018", "00080016", "00080060"
#: objects that are results, not images (structured reports, key objects, presentation states,
#: segmentations): a study scored before holds cxrkit's own reports, which are never scored
_NOT_IMAGES = frozenset({"SR", "KO", "PR", "SEG"})


def dicomweb_url(text: str) -> str | None:
    """The HTTP(S) base URL of ``dicomweb+http(s)://...``; None for anything else (a path)."""
    if not text.startswith(PREFIX):
        return None
    url = text[len(PREFIX):]
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"{text!r}: a DICOMweb server is dicomweb+http://HOST/PATH or dicomweb+https://HOST/PATH")
    return url.rstrip("/")


def _client(url: str) -> Any:
    try:
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        raise MissingDependency("cxrkit[dicom]", "talking to a DICOMweb server") from None
    return DICOMwebClient(url)


def _value(item: dict, tag: str) -> str:
    return str(item.get(tag, {}).get("Value", [""])[0])


def _http(what: str, url: str, exc: Exception) -> CxrkitError:
    response = getattr(exc, "response", None)
    status = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
    return CxrkitError(f"{what} at {url} failed ({status}); check the server address and that it is up")


def fetch_instances(url: str, study: str, folder: str | os.PathLike[str], series: str | None = None) -> list[Path]:
    """Find the study's (or one series') instances by QIDO-RS and fetch each by WADO-RS into
    ``folder/<SOP Instance UID>.dcm``; an instance already there is not fetched again. Reports and
    other non-image objects (:data:`_NOT_IMAGES`, every SR class) are left out."""
    client = _client(url)
    folder = Path(folder)
    try:
        found = client.search_for_instances(study_instance_uid=study, series_instance_uid=series)
    except Exception as exc:
        raise _http("the search for the study's instances", url, exc) from None
    if not found:
        raise MissingFile(f"{url} has no instances of that study{' and series' if series else ''}")
    paths = []
    for item in found:
        if _value(item, _MODALITY) in _NOT_IMAGES or _value(item, _SOP_CLASS).startswith("1.2.840.10008.5.1.4.1.1.88."):
            continue
        sop, in_series = _value(item, _INSTANCE), _value(item, _SERIES) or series
        target = folder / f"{sop}.dcm"
        if not target.exists():
            try:
                ds = client.retrieve_instance(study, in_series, sop)
            except Exception as exc:
                raise _http("fetching an instance", url, exc) from None
            save_dataset(ds, target, durable=False)
        paths.append(target)
    return paths


def store_instances(url: str, files: Sequence[str | os.PathLike[str]]) -> int:
    """Store DICOM files on the server by STOW-RS; returns how many were sent."""
    import pydicom

    if not files:
        return 0
    client = _client(url)
    try:
        client.store_instances([pydicom.dcmread(f) for f in files])
    except Exception as exc:
        raise _http("storing the reports (STOW-RS)", url, exc) from None
    return len(files)


def predict_study(url: str, study: str, runner: Runner, output: OutputSpec, workdir: str | os.PathLike[str], *,
                  series: str | None = None, kind: str = "findings", calibrated: bool = True, stow: bool = True,
                  **run: Any) -> tuple[RunSummary, int]:
    """Score a remote study: fetch its instances into ``workdir``, run ``runner`` over them into ``output``
    (rows get a ``dicom_sr`` column), and with ``stow`` store the reports back; returns the counts and the
    number of reports stored. ``run`` goes to :func:`~cxrkit.predict.run_files` (batch size, progress...).
    """
    workdir = Path(workdir)
    films = fetch_instances(url, study, workdir / "films", series)
    reports = ReportWriter(workdir / "sr", runner.card, kind=kind, calibrated=calibrated)  # type: ignore[attr-defined]
    written: list[str] = []

    def complete(rows: list[dict]) -> None:
        reports(rows)
        written.extend(row[COLUMN] for row in rows if not row[COLUMN].startswith("not written"))

    columns = [*(run.pop("columns", None) or output_columns(runner)), COLUMN]
    summary = run_files(films, runner, output, complete=complete, scanned=True, columns=columns, **run)
    stored = store_instances(url, written) if stow else 0
    return summary, stored
