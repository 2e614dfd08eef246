"""DICOM Structured Reports of a model's results: a TID 1500 measurement report per source film (IHE AIR).

A PACS files an object by its patient and study, and a viewer shows a result only if it
is such an object; so each report copies the source's Patient and General Study modules
(highdicom copies them from the evidence, nothing else about the patient is written),
keeps its Study Instance UID, sits in a series of its own ("cxrkit results") and names
the source instance as its evidence and as the source of every measurement group.

The UIDs are derived from what the report is about, never drawn at random: the instance
from (source SOP Instance UID, model sha256, kind), the series from (Study Instance UID,
model sha256, kind). Sending the same film twice gives the same report, which a PACS
stores once, so a retry after a crash never leaves a duplicate.

Algorithm identification (TID 4019) names the model, its version (the card's sha256) and
cxrkit as manufacturer; the device observer is cxrkit with the model name, the software
version is cxrkit's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import InvalidInput, MissingDependency, WeightsError
from .codes import CXR_AGE, PRIVATE_SCHEME, PRIVATE_SCHEME_NAME, finding_code

if TYPE_CHECKING:
    from pydicom import Dataset

    from ..models import ModelCard

__all__ = ["result_uid", "findings_report", "age_report", "model_version", "highdicom_module", "SERIES_DESCRIPTION",
           "SERIES_NUMBER", "MANUFACTURER"]

SERIES_DESCRIPTION = "cxrkit results"
#: series number of every cxrkit result series (a high number, after the acquisition's own)
SERIES_NUMBER = 9901
MANUFACTURER = "cxrkit"


def highdicom_module() -> Any:
    """highdicom, imported on first use (an optional dependency)."""
    try:
        import highdicom
    except ImportError:
        raise MissingDependency("cxrkit[dicom]", "writing DICOM structured reports") from None
    return highdicom


def result_uid(about: str, model_sha256: str, kind: str) -> str:
    """A UID fixed by ``(about, model_sha256, kind)``: sha512 of the three under pydicom's UID root.

    ``about`` is the UID the result belongs to (the source instance, or the study for a
    series), ``kind`` what the UID names (``findings``, ``findings-series``, ...).
    """
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[f"cxrkit|{kind}|", f"{about}|", model_sha256]))


def _code(triple: tuple[str, str, str]) -> Any:
    from pydicom.sr.coding import Code

    value, scheme, meaning = triple
    return Code(value, scheme, meaning)


def model_version(card: ModelCard) -> str:
    """The version every result object names its model by: the sha256 of its weight file (from the card)."""
    if not card.sha256:
        raise WeightsError(f"model {card.name} has no sha256 in its card: its results could not be identified; "
                           "load it from a weight file with a card")
    return card.sha256


def _source_reference(source: Dataset) -> list[Any]:
    hd = highdicom_module()
    return [hd.sr.SourceImageForMeasurementGroup(source.SOPClassUID, source.SOPInstanceUID)]


def _observation_context(card: ModelCard) -> Any:
    hd = highdicom_module()
    from pydicom.sr.codedict import codes

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=result_uid(card.name, model_version(card), "device"), name=MANUFACTURER, manufacturer_name=MANUFACTURER,
        model_name=card.name[:64])
    return hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.cid270.Device, observer_identifying_attributes=device))


def _algorithm(card: ModelCard, parameters: list[str]) -> Any:
    """TID 4019 algorithm identification; its parameters also carry the card's verdict on held-out
    patients (``ModelCard.evidence``), so a viewer showing the scores shows whether they read films."""
    evidence = card.evidence
    if evidence is not None:
        parameters = [*parameters, f"evidence: {evidence.sentence()}"]
    return highdicom_module().sr.AlgorithmIdentification(name=card.name[:64], version=model_version(card),
                                                         parameters=parameters, manufacturer=MANUFACTURER)


def _report(source: Dataset, card: ModelCard, kind: str, groups: list[Any]) -> Dataset:
    """The SR of ``groups`` (TID 1501 measurement groups) about ``source``, with its derived UIDs."""
    hd = highdicom_module()
    from pydicom.sr.codedict import codes

    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not str(source.get(keyword, "")).strip():
            raise InvalidInput(f"the source has no {keyword}: a result could not be filed beside it")
    report = hd.sr.MeasurementReport(observation_context=_observation_context(card),
                                     procedure_reported=codes.SCT.ChestImaging, imaging_measurements=groups)
    sha = model_version(card)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source], content=report,
        series_instance_uid=result_uid(source.StudyInstanceUID, sha, f"{kind}-series"), series_number=SERIES_NUMBER,
        sop_instance_uid=result_uid(source.SOPInstanceUID, sha, kind),
        instance_number=int(source.get("InstanceNumber") or 1), manufacturer=MANUFACTURER, is_complete=True)
    sr.SeriesDescription = SERIES_DESCRIPTION
    sr.SoftwareVersions = f"cxrkit {__version__}"
    sr.ManufacturerModelName = card.name[:64]
    if _uses_private(sr):
        _declare_private_scheme(sr)
    return sr


def _uses_private(ds: Dataset) -> bool:
    """Whether a dataset holds a code of cxrkit's private scheme, at any depth."""
    return any(element.keyword == "CodingSchemeDesignator" and element.value == PRIVATE_SCHEME
               for element in ds.iterall())


def _declare_private_scheme(sr: Dataset) -> None:
    """Name the private scheme in the Coding Scheme Identification Sequence (PS3.3 C.12.1.1.8)."""
    from pydicom import Dataset as _Dataset
    from pydicom.sequence import Sequence

    item = _Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = PRIVATE_SCHEME_NAME
    item.CodingSchemeResponsibleOrganization = MANUFACTURER
    sr.CodingSchemeIdentificationSequence = Sequence([item])


def findings_report(source: Dataset, card: ModelCard, scores: Mapping[str, float | None], *,
                    calibrated: bool) -> Dataset:
    """The measurement report of one film's pathology scores.

    One measurement group per label the model predicts (``card.trained_labels``) with a
    finite score: finding type = the label's code, a Probability measurement (UCUM ``1``)
    holding the score as written in the CSV, and, where the card has an operating
    threshold for the label, a qualitative evaluation Present/Absent at that threshold
    (``calibrated``: the score is already rescaled so the threshold is 0.5). Labels the
    model does not predict are left out, never written as a made-up 0.5.
    """
    hd = highdicom_module()
    from pydicom.sr.codedict import codes

    method = card.threshold_method or "card thresholds"
    parameters = [f"scores calibrated: operating threshold ({method}) at 0.5" if calibrated
                  else "scores raw: model probabilities"]
    algorithm = _algorithm(card, parameters)
    sha = model_version(card)
    groups = []
    for label in card.trained_labels:
        value = scores.get(label)
        if value is None or not math.isfinite(float(value)):
            continue
        value = float(value)
        finding = _code(finding_code(label))
        evaluations = []
        if label in card.thresholds:
            present = value >= 0.5 if calibrated else value >= card.thresholds[label]
            evaluations.append(hd.sr.QualitativeEvaluation(finding, codes.DCM.Present if present else codes.DCM.Absent))
        probability = hd.sr.Measurement(name=codes.DCM.Probability, value=value, unit=codes.UCUM.NoUnits)
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=result_uid(source.SOPInstanceUID, sha, f"finding|{label}"),
                                                         identifier=label[:64]),
            finding_type=finding, algorithm_id=algorithm, measurements=[probability],
            qualitative_evaluations=evaluations or None, source_images=_source_reference(source)))
    if not groups:
        raise InvalidInput("the model gave no score for this film: there is nothing to report")
    return _report(source, card, "findings", groups)


def age_report(source: Dataset, card: ModelCard, age: float, spread: float | None = None) -> Dataset:
    """The measurement report of one film's CXR-Age: the estimate in years (UCUM ``a``) and, with
    test-time augmentation, the standard deviation of its eight views (derivation: Standard Deviation)."""
    hd = highdicom_module()
    from pydicom.sr.codedict import codes

    if not math.isfinite(float(age)):
        raise InvalidInput("the age model gave no estimate for this film: there is nothing to report")
    sd = math.nan if spread is None else float(spread)
    tta = math.isfinite(sd)
    algorithm = _algorithm(card, ["test-time augmentation: plain film 0.4, 8 corner zooms 0.6" if tta
                                  else "plain film, no test-time augmentation"])
    concept = _code(CXR_AGE)
    measurements = [hd.sr.Measurement(name=concept, value=float(age), unit=codes.UCUM.Year)]
    if tta:
        measurements.append(hd.sr.Measurement(name=concept, value=sd, unit=codes.UCUM.Year,
                                              derivation=codes.SCT.StandardDeviation))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=result_uid(source.SOPInstanceUID, model_version(card), "age|group"),
                                                     identifier="CXR-Age"),
        finding_type=concept, algorithm_id=algorithm, measurements=measurements,
        source_images=_source_reference(source))
    return _report(source, card, "age", [group])
