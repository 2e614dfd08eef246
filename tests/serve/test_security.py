"""Access control, size limits, CORS, and patient data: nothing identifying in answers or logs."""

from __future__ import annotations

import logging
import os
import stat

import httpx
import pytest

from cxrkit.errors import CxrkitError
from cxrkit.serve import ServeConfig, read_token
from cxrkit.serve.memory import MemoryFiles
from cxrkit.serve.uploads import Upload, display_name

TOKEN = "test-token-0123456789abcdef"


def test_token_is_required_on_every_v1_route(make_server, files, example_images):
    server = make_server(token=TOKEN)
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        film = files(example_images[0])
        calls = [("GET", "/v1/models", {}), ("POST", "/v1/predict", {"files": film}), ("POST", "/v1/age", {"files": film}),
                 ("POST", "/v1/explain", {"files": film}), ("POST", "/v1/film", {"files": film}),
                 ("POST", "/v1/export/csv", {"json": {"rows": []}})]
        for method, path, kwargs in calls:
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"}):
                answer = http.request(method, path, headers=headers, **kwargs)
                assert answer.status_code == 401, (path, headers)
                assert answer.headers["www-authenticate"] == "Bearer"
                assert "token" in answer.json()["detail"]
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/v1/models", headers=good).status_code == 200
        assert http.post("/v1/predict", headers=good, files=film).json()["rows"][0]["status"] == "ok"
        assert http.get("/healthz").json()["token_required"] is True  # the page learns it must ask
        assert http.get("/").status_code == 200 and http.get("/static/app.js").status_code == 200
        assert "HTTPBearer" in http.get("/openapi.json").json()["components"]["securitySchemes"]


def test_token_file_and_config_checks(tmp_path):
    path = tmp_path / "token.txt"
    path.write_text(f"  {TOKEN}\n")
    assert read_token(path) == TOKEN
    path.write_text("two words")
    with pytest.raises(CxrkitError, match="one token"):
        read_token(path)
    with pytest.raises(CxrkitError, match="cannot read"):
        read_token(tmp_path / "missing.txt")
    with pytest.raises(CxrkitError, match="at least 16"):
        ServeConfig(token="short")
    with pytest.raises(CxrkitError, match="per-file limit is larger"):
        ServeConfig(max_file_bytes=10, max_request_bytes=5)
    with pytest.raises(CxrkitError, match="`cors_origins`"):
        ServeConfig(cors_origins=("example.org",))
    assert ServeConfig().loopback and ServeConfig(host="::1").loopback and not ServeConfig(host="0.0.0.0").loopback


def test_size_limits_answer_413_with_a_clear_message(make_server, files, example_images):
    server = make_server(max_file_bytes=200_000, max_request_bytes=400_000, max_files=3)
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        big = http.post("/v1/predict", files=files(("big.png", b"\x89PNG" + b"0" * 300_000)))
        assert big.status_code == 413
        assert "0.190735 MB per file" in big.json()["detail"] and "`max_file_bytes`" in big.json()["detail"]
        many = http.post("/v1/predict", files=files(*[(f"f{i}.png", b"x") for i in range(4)]))
        assert many.status_code == 413 and "more than 3 files" in many.json()["detail"]
        body = b"".join([b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"f%d.png\"\r\n\r\n" % i
                         + b"1" * 150_000 + b"\r\n" for i in range(3)]) + b"--b--\r\n"
        declared = http.post("/v1/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
        assert declared.status_code == 413 and "per request" in declared.json()["detail"]
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))  # no Content-Length: counted as it streams
        streamed = http.post("/v1/predict", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"})
        assert streamed.status_code == 413 and "per request" in streamed.json()["detail"]
        fine = http.post("/v1/predict", files=files(*example_images[:3]))
        assert fine.status_code == 200 and len(fine.json()["rows"]) == 3


def test_cors_is_off_unless_an_origin_is_given(client, make_server):
    origin = {"Origin": "https://viewer.example.org"}
    assert "access-control-allow-origin" not in client.get("/v1/models", headers=origin).headers
    server = make_server(cors_origins=("https://viewer.example.org",))
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as http:
        assert http.get("/v1/models", headers=origin).headers["access-control-allow-origin"] == origin["Origin"]
        other = http.get("/v1/models", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.slow
def test_no_patient_identifier_in_any_answer_header_or_log(client, files, phi_dicom, caplog):
    """A DICOM with a known PatientName/PatientID through every endpoint; the upload's name is
    echoed in the rows (the client sent it) but never logged."""
    caplog.set_level(logging.DEBUG)
    upload = files(("Doe_Jane_chest.dcm", phi_dicom.path.read_bytes()))
    answers = [
        client.post("/v1/predict", files=upload),
        client.post("/v1/predict?format=csv", files=upload),
        client.post("/v1/predict?format=jsonl&fix_orientation=true", files=upload),
        client.post("/v1/age", files=upload),
        client.post("/v1/age?format=csv", files=upload, data={"age": "40"}),
        client.post("/v1/explain?label=Effusion", files=upload),
        client.post("/v1/explain?label=Effusion&format=json", files=upload),
        client.post("/v1/explain?format=npy", files=upload),
        client.post("/v1/film", files=upload),
        client.get("/v1/models"),
        client.get("/healthz"),
    ]
    rows = answers[0].json()["rows"]
    answers.append(client.post("/v1/export/csv", json={"rows": rows}))
    assert all(a.status_code == 200 for a in answers), [a.status_code for a in answers]
    assert rows[0]["status"] == "ok"
    assert answers[3].json()["rows"][0]["chronological_age"] == 62.0  # age is used where the feature needs it
    secrets = [phi_dicom.patient_name, phi_dicom.patient_id, "Doe^Jane", "Testpatient"]
    for answer in answers:
        blobs = [answer.content, *(f"{k}: {v}".encode() for k, v in answer.headers.items())]
        for secret in secrets:
            assert not any(secret.encode() in blob for blob in blobs), (answer.request.url, secret)
    log_text = "\n".join(record.getMessage() + str(record.args) for record in caplog.records)
    assert "POST /v1/predict 200" in log_text  # the access log was captured...
    for secret in [*secrets, "Doe_Jane_chest"]:  # ...and names neither the patient nor the file
        assert secret not in log_text, secret


def test_uploads_live_in_memory_and_vanish(example_images):
    memory = MemoryFiles()
    assert memory.in_memory  # Linux: memfd_create
    data = example_images[0].read_bytes()
    with memory.paths([Upload("scan.png", data), Upload("no-extension", b"x")]) as paths:
        assert [p.suffix for p in paths] == [".png", ""]
        for path in paths:
            target = os.readlink(path)
            assert target.startswith("/proc/self/fd/") and os.readlink(target).startswith("/memfd:")
        assert paths[0].read_bytes() == data
        folder = paths[0].parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(p.is_symlink() for p in folder.iterdir())  # links only: no image bytes on disk
    assert list(folder.iterdir()) == []
    memory.close()
    assert not folder.exists()


def test_fallback_without_memfd_deletes_its_files(example_images, monkeypatch):
    memory = MemoryFiles()
    monkeypatch.setattr(memory, "in_memory", False)
    with memory.paths([Upload("a.png", b"abc")]) as (path,):
        assert not path.is_symlink() and path.read_bytes() == b"abc"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.exists()
    memory.close()


def test_upload_names_and_reprs_stay_harmless():
    assert display_name("C:\\Users\\doe\\Doe_Jane.dcm", 1) == "Doe_Jane.dcm"
    assert display_name("../../etc/passwd", 2) == "passwd"
    assert display_name("a\x00b\nc.png", 3) == "abc.png"
    assert display_name("", 4) == "file-4"
    assert "Doe" not in repr(Upload("Doe_Jane.dcm", b"\x00" * 10)) and "10 bytes" in repr(Upload("x", b"\x00" * 10))
