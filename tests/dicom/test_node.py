"""`cxr listen` as a DICOM node: echo, refusals with their DIMSE status, and the round trip through a real Orthanc.

Round trip: films stored in Orthanc are sent by Orthanc (REST ``/modalities/cxrkit/store``)
to the node, which must send back exactly one report per film, filed under the film's
patient and study, holding the probabilities `cxr predict` writes for the same files.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.serve.node import DicomNode, NodeConfig  # imports pynetdicom only when a node starts

pytest.importorskip("highdicom", reason="the dicom extra (highdicom) is not installed")
pynetdicom = pytest.importorskip("pynetdicom", reason="the dicom extra (pynetdicom) is not installed")

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "dicom"
FILMS = [REPO / "examples" / "siim_chest_pa.dcm", *(SHARED / n for n in ("RG2_JPLL.dcm", "RG1_JLSN.dcm", "RG3_J2KR.dcm")
                                                  if (SHARED / n).is_file())]
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture()
def node(tmp_path, tiny_model_file):
    config = NodeConfig(spool=tmp_path / "spool", port=0, model=str(tiny_model_file), precision="fp32",
                        allow_ae=("MODALITY", "ORTHANC"), poll_s=0.1)
    running = DicomNode(config)
    running.start()
    yield running
    running.stop()


@pytest.mark.pacs
def test_echo_store_and_refusals_with_their_dimse_status(node, caplog, until, scu):
    port = node.address[1]
    film = pydicom.dcmread(FILMS[0])
    assert scu.echo(port) == 0x0000
    assert scu.echo(port, calling="STRANGER") is None  # not in --allow-ae: association rejected
    ct = copy.deepcopy(film)
    ct.SOPClassUID = ct.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ct.Modality = "CT"
    assert scu.store(port, ct) == 0x0122  # SOP class not supported
    frames = copy.deepcopy(film)
    frames.NumberOfFrames = 2
    assert scu.store(port, frames) == 0xC000  # cannot understand: not one film
    assert scu.store(port, film) == 0x0000
    report = until(lambda: list(node.spool.outbox.glob("*.dcm")), 60, "the report in the outbox")
    assert len(report) == 1 and node.spool.counts() == {"incoming": 0, "outbox": 1, "failed": 0}
    sr = pydicom.dcmread(report[0])
    assert sr.StudyInstanceUID == film.StudyInstanceUID and sr.PatientID == film.PatientID
    for record in caplog.records:  # refusals were logged without patient data
        assert str(film.PatientID) not in record.getMessage() and str(film.StudyInstanceUID) not in record.getMessage()


def _predicted(files: list[Path], model: Path, out: Path) -> dict[str, dict]:
    """`cxr predict` rows of ``files`` by SOP Instance UID."""
    result = CliRunner().invoke(app, ["predict", *map(str, files), "--model", str(model), "-o", str(out), "--format",
                                      "jsonl", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {pydicom.dcmread(row["file"], stop_before_pixels=True).SOPInstanceUID: row for row in rows}


def _sr_values(data: bytes) -> tuple[pydicom.Dataset, dict[str, float], str]:
    import io

    import highdicom as hd

    sr = pydicom.dcmread(io.BytesIO(data))
    groups = hd.sr.Comprehensive3DSR.from_dataset(sr).content.get_image_measurement_groups()
    values = {g.tracking_identifier: g.get_measurements()[0].value for g in groups}
    return sr, values, groups[0].source_images[0].referenced_sop_instance_uid


def _all_reports(orthanc, count: int) -> list[dict] | None:
    reports = orthanc.reports()
    return reports if len(reports) >= count else None


def test_round_trip_through_orthanc(orthanc, listener, tiny_model_file, tmp_path, until):
    listener.start()
    try:
        ids = [orthanc.upload(film) for film in FILMS]
        started = time.perf_counter()
        sent = orthanc.send_to_node(ids)
        assert sent["status"] == 200, sent
        reports = until(lambda: _all_reports(orthanc, len(FILMS)), 180, "one report per film in Orthanc")
        seconds = time.perf_counter() - started
        expected = _predicted(FILMS, tiny_model_file, tmp_path / "rows.jsonl")
        sources = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: pydicom.dcmread(f, stop_before_pixels=True)
                   for f in FILMS}
        seen = set()
        for report in reports:
            sr, values, source_uid = _sr_values(orthanc.file(report["id"]))
            source = sources[source_uid]
            seen.add(source_uid)
            assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.PatientID == source.PatientID
            assert report["tags"]["StudyInstanceUID"] == source.StudyInstanceUID
            row = expected[source_uid]
            assert values.keys() and all(v == pytest.approx(row[k], abs=1e-6) for k, v in values.items())
        assert seen == set(sources)
        # sending the same films again gives the same reports: still one per film
        assert orthanc.send_to_node(ids)["status"] == 200
        time.sleep(3)
        until(lambda: not list((tmp_path / "spool" / "outbox").glob("*.dcm")), 60, "the outbox to empty")
        assert len(orthanc.reports()) == len(FILMS)
        print(f"round trip: {len(FILMS)} films in {seconds:.1f} s ({seconds / len(FILMS):.2f} s per film)")
    finally:
        listener.stop()


def _sources() -> dict[str, pydicom.Dataset]:
    return {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f) for f in FILMS)}


def _report_sources(orthanc) -> list[str]:
    """The source instance of every report in Orthanc (a duplicate would appear twice)."""
    return [_sr_values(orthanc.file(report["id"]))[2] for report in orthanc.reports()]


def test_destination_down_then_kill_then_restart_loses_nothing(orthanc, listener, scu, tmp_path, until):
    """Orthanc stops; films keep arriving and are acknowledged; their reports wait in the spool through
    a kill -9 and a restart of the node, and reach Orthanc, once each, when it is back."""
    listener.start()
    orthanc.stop()
    films = _sources()
    for ds in films.values():
        assert scu.store(orthanc.node_port, ds) == 0x0000
    outbox = tmp_path / "spool" / "outbox"
    until(lambda: len(list(outbox.glob("*.dcm"))) == len(films), 120, "every report waiting in the outbox")
    until(lambda: "unreachable" in listener.log.read_text(), 30, "a failed attempt to reach the destination")
    listener.kill()
    listener.start()  # the same spool: the reports are still there
    assert len(list(outbox.glob("*.dcm"))) == len(films)
    orthanc.start()
    until(lambda: not list(outbox.glob("*.dcm")), 120, "the outbox to empty once Orthanc is back")
    assert sorted(_report_sources(orthanc)) == sorted(films)


def test_kill_9_at_random_points_gives_each_acknowledged_film_one_report(orthanc, listener, scu, tmp_path, until):
    """The node is killed at a random moment after each acknowledged film (while it spools, scores or
    sends) and restarted; in the end every film that got a success status has exactly one report."""
    films = dict(list(_sources().items())[:3])  # three kills: enough random points, a minute less of CI
    pick = random.Random(20)
    listener.start()
    acknowledged = []
    for uid, ds in films.items():
        if scu.store(orthanc.node_port, ds) == 0x0000:
            acknowledged.append(uid)
        time.sleep(pick.uniform(0.0, 3.0))
        listener.kill()
        listener.start()
    assert acknowledged == list(films)
    until(lambda: len(orthanc.reports()) >= len(acknowledged), 180, "one report per acknowledged film")
    until(lambda: not list((tmp_path / "spool" / "outbox").glob("*.dcm")), 60, "the outbox to empty")
    assert sorted(_report_sources(orthanc)) == sorted(acknowledged)
    assert listener.interrupt() == 0  # Ctrl-C: a clean stop


@pytest.mark.pacs
def test_association_limit_rejects_the_one_too_many(tmp_path, tiny_model_file):
    node = DicomNode(NodeConfig(spool=tmp_path / "spool", port=0, model=str(tiny_model_file), max_associations=1))
    port = node.start()[1]
    try:
        first = pynetdicom.AE(ae_title="MODALITY")
        first.add_requested_context("1.2.840.10008.1.1")
        held = first.associate("127.0.0.1", port, ae_title="CXRKIT")
        assert held.is_established
        second = pynetdicom.AE(ae_title="MODALITY")
        second.add_requested_context("1.2.840.10008.1.1")
        assoc = second.associate("127.0.0.1", port, ae_title="CXRKIT")
        assert assoc.is_rejected  # the limit, not a hang
        held.release()
        assoc = second.associate("127.0.0.1", port, ae_title="WRONGTITLE")
        assert assoc.is_rejected  # calling another AE title than the node's
    finally:
        node.stop()


@pytest.mark.parametrize("text, expected", [
    ("ORTHANC@127.0.0.1:4242", ("ORTHANC", "127.0.0.1", 4242, None)),
    ("PACS@[::1]:104", ("PACS", "::1", 104, None)),
    ("dicomweb+http://pacs:8042/dicom-web/", ("", "", 0, "http://pacs:8042/dicom-web")),
])
def test_destinations_parse(text, expected):
    from cxrkit.serve.node import parse_destination

    d = parse_destination(text)
    assert (d.ae_title, d.host, d.port, d.url) == expected


@pytest.mark.parametrize("text", ["ORTHANC@127.0.0.1", "127.0.0.1:4242", "A_TITLE_LONGER_THAN_16@h:1", "X@h:70000",
                                  "dicomweb+ftp://pacs/dicom-web"])
def test_bad_destinations_are_refused_with_the_form_to_use(text):
    from cxrkit.errors import CxrkitError
    from cxrkit.serve.node import parse_destination

    with pytest.raises(CxrkitError):
        parse_destination(text)


@pytest.mark.parametrize("uid", ["../../etc/passwd", "1.2.3/4", "", "1.2..3", "x" * 10])
def test_spool_refuses_a_uid_that_is_not_one(tmp_path, uid):
    from cxrkit.errors import CxrkitError
    from cxrkit.serve.node import Spool

    spool = Spool(tmp_path / "spool")
    with pytest.raises(CxrkitError):
        spool.receive(uid, b"data")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
