"""Structured reports of `cxr predict --dicom-sr` and `cxr age --dicom-sr`: valid, equal to the rows, deterministic.

Each report is read back with highdicom and checked against the JSON Lines row it was
written beside (full float precision), against its source film (study, patient module,
evidence) and, where dicom3tools is installed, by ``dciodvfy``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.dicom import FINDING_CODES, PRIVATE_SCHEME, ReportWriter, result_uid  # highdicom is imported on use
from cxrkit.models import ModelCard

hd = pytest.importorskip("highdicom", reason="the dicom extra (highdicom) is not installed")
get_module_attribute_map = pytest.importorskip("highdicom._standard_utils").get_module_attribute_map

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
#: a few real radiographs of different vendors and encodings from ../shared/data/dicom
SHARED_DICOMS = ("RG2_JPLL.dcm", "RG1_JLSN.dcm", "RG3_J2KR.dcm")
PATIENT_MODULE = [a["keyword"] for a in get_module_attribute_map()["patient"] if not a["path"]]


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> Path:
    """The example DICOM, real DICOMs from ../shared/data when present, and one PNG."""
    root = tmp_path_factory.mktemp("films")
    shutil.copy(REPO / "examples" / "siim_chest_pa.dcm", root)
    shutil.copy(REPO / "examples" / "00001036_000.png", root)
    shared = REPO.parent / "shared" / "data" / "dicom"
    for name in SHARED_DICOMS:
        if (shared / name).is_file():
            shutil.copy(shared / name, root)
    return root


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


def _groups(path: str) -> list:
    return hd.sr.srread(path).content.get_image_measurement_groups()


def _texts(ds) -> list[str]:
    """Every TextValue anywhere in an SR's content tree."""
    found = [str(ds.TextValue)] if "TextValue" in ds else []
    for item in ds.get("ContentSequence", []):
        found += _texts(item)
    return found


def dciodvfy_errors(path: str | Path) -> list[str]:
    """``Error`` lines of dciodvfy on one file (the test calling this skips without dicom3tools)."""
    out = subprocess.run(["dciodvfy", str(path)], check=False, capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def predicted(films, tiny_model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("predicted")
    _run("predict", str(films), "--model", str(tiny_model_file), "-o", str(out / "rows.jsonl"), "--format", "jsonl",
         "--precision", "fp32", "--dicom-sr", str(out / "sr"))
    return out


def test_one_report_per_dicom_row_and_a_reason_for_the_png(predicted, films):
    rows = _rows(predicted / "rows.jsonl")
    assert len(rows) == len(list(films.iterdir()))
    for row in rows:
        assert row["status"] == "ok"
        if row["file"].endswith(".png"):
            assert row["dicom_sr"].startswith("not written: not a DICOM file (png)")
        else:
            assert Path(row["dicom_sr"]).is_file(), row
    assert len(list((predicted / "sr").glob("*.dcm"))) == len(rows) - 1


def test_report_values_equal_the_rows_and_follow_the_operating_point(predicted, tiny_model_file):
    card = ModelCard.load(tiny_model_file.with_suffix(".json"))
    for row in _rows(predicted / "rows.jsonl"):
        if row["file"].endswith(".png"):
            continue
        groups = _groups(row["dicom_sr"])
        found = {}
        for group in groups:
            label = group.tracking_identifier
            (measurement,) = group.get_measurements()
            assert measurement.name.value == "122157" and measurement.unit.value == "1"
            found[label] = measurement.value
            assert group.finding_type.value == FINDING_CODES[label][0]
            (evaluation,) = group.get_qualitative_evaluations()
            assert evaluation.value.meaning == ("Present" if row[label] >= 0.5 else "Absent")  # calibrated: 0.5
            (source,) = group.source_images
            assert source.referenced_sop_instance_uid == pydicom.dcmread(row["file"], stop_before_pixels=True).SOPInstanceUID
        assert set(found) == set(card.trained_labels)  # the 4 labels the model does not predict are absent
        for label, value in found.items():
            assert value == pytest.approx(row[label], abs=1e-6)


def test_report_files_under_the_source_patient_and_study(predicted, tiny_model_file):
    card = ModelCard.load(tiny_model_file.with_suffix(".json"))
    for row in _rows(predicted / "rows.jsonl"):
        if row["file"].endswith(".png"):
            continue
        source = pydicom.dcmread(row["file"], stop_before_pixels=True)
        sr = pydicom.dcmread(row["dicom_sr"])
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        assert sr.SeriesInstanceUID != source.SeriesInstanceUID and sr.SeriesDescription == "cxrkit results"
        for keyword in PATIENT_MODULE:
            if keyword in source:
                assert sr[keyword].value == source[keyword].value, keyword
            else:  # nothing about the patient that the source did not carry
                assert not sr.get(keyword), keyword
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
        assert evidence.ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert evidence.ReferencedSOPClassUID == source.SOPClassUID
        assert sr.Manufacturer == "cxrkit"
        algorithm = {item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue
                     for item in sr.ContentSequence[-1].ContentSequence[0].ContentSequence
                     if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeMeaning.startswith("Algorithm")}
        assert algorithm["Algorithm Name"] == "densenet121.test-tiny"
        assert algorithm["Algorithm Version"] == card.sha256


def test_private_codes_are_declared_and_standard_codes_exist_in_the_standard(predicted):
    from pydicom.sr.codedict import codes

    for label, (value, scheme, meaning) in FINDING_CODES.items():
        assert len(value) <= 16, label
        if scheme != PRIVATE_SCHEME:
            standard = {getattr(getattr(codes, scheme), name).value for name in getattr(codes, scheme).dir(meaning.split()[0])}
            assert value in standard, (label, value)
    sr = pydicom.dcmread(next((predicted / "sr").glob("*.dcm")))
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == PRIVATE_SCHEME


@pytest.mark.slow
def test_same_films_give_the_same_report_uids(predicted, films, tiny_model_file, tmp_path):
    _run("predict", str(films), "--model", str(tiny_model_file), "-o", str(tmp_path / "again.jsonl"), "--format",
         "jsonl", "--precision", "fp32", "--dicom-sr", str(tmp_path / "sr"))
    first = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p).SeriesInstanceUID for p in (predicted / "sr").glob("*.dcm")}
    again = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p).SeriesInstanceUID for p in (tmp_path / "sr").glob("*.dcm")}
    assert first == again and len(first) >= 1
    assert sorted(p.name for p in (predicted / "sr").glob("*.dcm")) == sorted(p.name for p in (tmp_path / "sr").glob("*.dcm"))
    # and a different model or kind would give other UIDs
    assert result_uid("1.2.3", "a" * 64, "findings") != result_uid("1.2.3", "b" * 64, "findings")
    assert result_uid("1.2.3", "a" * 64, "findings") != result_uid("1.2.3", "a" * 64, "age")


@pytest.mark.slow
def test_age_report_holds_the_estimate_in_years_and_its_tta_spread(films, tmp_path):
    _run("age", str(films), "-o", str(tmp_path / "ages.jsonl"), "--format", "jsonl", "--tta", "--precision", "fp32",
         "--dicom-sr", str(tmp_path / "sr"))
    checked = 0
    for row in _rows(tmp_path / "ages.jsonl"):
        if row["file"].endswith(".png"):
            assert row["dicom_sr"].startswith("not written")
            continue
        (group,) = _groups(row["dicom_sr"])
        age, spread = group.get_measurements()
        assert age.unit.value == "a" and spread.unit.value == "a"
        assert spread.derivation.meaning == "Standard Deviation"
        assert age.value == pytest.approx(row["cxr_age"], abs=1e-6)
        assert spread.value == pytest.approx(row["cxr_age_sd"], abs=1e-6)
        # the card's verdict travels with the scores: the bundled age model is not shown to beat chance
        texts = _texts(pydicom.dcmread(row["dicom_sr"]))
        assert any(t.startswith("evidence: not shown to be better than chance") for t in texts), texts
        checked += 1
    assert checked >= 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) is not installed")
def test_dciodvfy_finds_no_error_in_any_report(predicted, films, tmp_path):
    _run("age", str(films), "-o", str(tmp_path / "ages.csv"), "--dicom-sr", str(tmp_path / "sr"))
    reports = [*(predicted / "sr").glob("*.dcm"), *(tmp_path / "sr").glob("*.dcm")]
    assert len(reports) >= 2
    for path in reports:
        assert dciodvfy_errors(path) == [], path.name


def test_a_source_without_uids_gets_a_reason_not_a_report(tmp_path, tiny_model_file):
    source = pydicom.dcmread(REPO / "examples" / "siim_chest_pa.dcm")
    del source.StudyInstanceUID
    source.save_as(tmp_path / "no_study.dcm")
    card = ModelCard.load(tiny_model_file.with_suffix(".json"))
    row = {"file": str(tmp_path / "no_study.dcm"), "status": "ok", **{label: 0.7 for label in card.trained_labels}}
    ReportWriter(tmp_path / "sr", card)([row])
    assert row["dicom_sr"] == "not written: the source has no StudyInstanceUID: a result could not be filed beside it"
    assert not (tmp_path / "sr").exists() or not list((tmp_path / "sr").iterdir())


@pytest.mark.slow
def test_overlay_secondary_capture_in_the_film_study(films, tiny_model_file, tmp_path):
    import cv2

    _run("predict", str(films), "--model", str(tiny_model_file), "-o", str(tmp_path / "rows.jsonl"), "--format",
         "jsonl", "--heatmaps", str(tmp_path / "maps"), "--heatmap-labels", "top1", "--dicom-overlay",
         str(tmp_path / "sc"))
    checked = 0
    for row in _rows(tmp_path / "rows.jsonl"):
        if row["file"].endswith(".png"):
            assert row["dicom_overlay"].startswith("not written: not a DICOM file")
            continue
        source = pydicom.dcmread(row["file"], stop_before_pixels=True)
        sc = pydicom.dcmread(row["dicom_overlay"])
        assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.SeriesDescription == "cxrkit overlays"
        assert sc.SOPInstanceUID == result_uid(source.SOPInstanceUID, ModelCard.load(tiny_model_file.with_suffix(".json")).sha256, "overlay")
        for keyword in PATIENT_MODULE:
            if keyword in source:
                assert sc[keyword].value == source[keyword].value, keyword
        png = cv2.imread(row["heatmaps"], cv2.IMREAD_COLOR)[:, :, ::-1]
        assert (sc.pixel_array == png).all()  # the overlay as drawn, pixel for pixel
        if shutil.which("dciodvfy"):
            assert dciodvfy_errors(row["dicom_overlay"]) == []
        checked += 1
    assert checked >= 1
