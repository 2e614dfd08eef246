"""DICOMweb against Orthanc's plugin: `cxr predict dicomweb+http://... --study UID --dicom-sr stow`
(QIDO-RS, WADO-RS, STOW-RS) and `cxr listen --forward-to dicomweb+http://...`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app

hd = pytest.importorskip("highdicom", reason="the dicom extra (highdicom) is not installed")
pytest.importorskip("dicomweb_client", reason="the dicom extra (dicomweb-client) is not installed")

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "dicom"
FILMS = [REPO / "examples" / "siim_chest_pa.dcm", *(SHARED / n for n in ("RG2_JPLL.dcm", "RG1_JLSN.dcm") if (SHARED / n).is_file())]


def _values(data: bytes) -> tuple[pydicom.Dataset, dict[str, float]]:
    sr = pydicom.dcmread(io.BytesIO(data))
    groups = hd.sr.Comprehensive3DSR.from_dataset(sr).content.get_image_measurement_groups()
    return sr, {g.tracking_identifier: g.get_measurements()[0].value for g in groups}


def test_predict_a_study_by_dicomweb_and_store_the_reports_back(orthanc, tiny_model_file, tmp_path):
    if not (Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")).exists():
        pytest.skip("Orthanc's DICOMweb plugin is not installed (apt install orthanc-dicomweb)")
    for film in FILMS:
        orthanc.upload(film)
    source = pydicom.dcmread(FILMS[0], stop_before_pixels=True)
    out = tmp_path / "rows.jsonl"
    args = ["predict", f"dicomweb+{orthanc.url}/dicom-web", "--study", source.StudyInstanceUID, "-o", str(out),
            "--format", "jsonl", "--model", str(tiny_model_file), "--precision", "fp32", "--dicom-sr", "stow"]
    for attempt in range(2):  # twice: the same reports, still one per film
        result = CliRunner().invoke(app, args + (["--overwrite"] if attempt else []))
        assert result.exit_code == 0, result.output
        assert "1 report(s) stored back by STOW-RS" in result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    reports = orthanc.reports()
    assert len(reports) == 1  # only the asked study was scored, and only once
    sr, values = _values(orthanc.file(reports[0]["id"]))
    assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.PatientID == source.PatientID
    assert values and all(v == pytest.approx(row[k], abs=1e-6) for k, v in values.items())


def test_a_study_the_server_lacks_is_one_clear_error(orthanc, tiny_model_file, tmp_path):
    result = CliRunner().invoke(app, ["predict", f"dicomweb+{orthanc.url}/dicom-web", "--study", "1.2.3.4",
                                      "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_file)])
    assert result.exit_code != 0 and "has no instances of that study" in result.output


def test_listen_stores_its_reports_by_stow(orthanc, web_listener, scu, tmp_path, until):
    web_listener.start()
    films = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f) for f in FILMS)}
    for ds in films.values():
        assert scu.store(orthanc.node_port, ds) == 0x0000
    until(lambda: len(orthanc.reports()) >= len(films), 180, "one report per film stored by STOW-RS")
    for report in orthanc.reports():
        sr, _ = _values(orthanc.file(report["id"]))
        source = films[sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
                       .ReferencedSOPSequence[0].ReferencedSOPInstanceUID]
        assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert len(orthanc.reports()) == len(films)
