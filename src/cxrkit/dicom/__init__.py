"""DICOM out: a model's results as objects a PACS files and a radiologist's viewer shows.

Built on highdicom (``pip install cxrkit[dicom]``): a TID 1500 measurement report per
scored DICOM film, in the film's study, identified as IHE AI Results asks (model name,
version = the card's sha256, manufacturer cxrkit), with UIDs derived from the source and
the model so a resend never duplicates (:mod:`.sr`); the standard and private codes of
each finding (:mod:`.codes`); and the writer that stores one report per row of a batch
run (:mod:`.results`); the top finding's overlay as a Secondary Capture (:mod:`.overlay`); DICOMweb search, fetch and store (:mod:`.web`).
"""

from .codes import CXR_AGE, FINDING_CODES, PRIVATE_SCHEME, finding_code
from .overlay import OVERLAY_COLUMN, OverlayWriter, overlay_image
from .results import COLUMN, KINDS, ReportWriter, read_source, save_dataset
from .sr import MANUFACTURER, SERIES_DESCRIPTION, age_report, findings_report, result_uid
from .steps import Overlays, Reports
from .web import dicomweb_url, fetch_instances, predict_study, store_instances

__all__ = ["COLUMN", "CXR_AGE", "FINDING_CODES", "KINDS", "MANUFACTURER", "OVERLAY_COLUMN", "OverlayWriter", "Overlays",
           "PRIVATE_SCHEME", "ReportWriter", "Reports", "SERIES_DESCRIPTION", "age_report", "dicomweb_url", "fetch_instances",
           "findings_report", "finding_code", "overlay_image", "predict_study", "read_source", "result_uid",
           "save_dataset", "store_instances"]
