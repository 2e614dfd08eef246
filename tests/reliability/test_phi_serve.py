"""A real ``cxr serve`` fed files with a token planted in every identifying header field,
intact and broken: no answer, header or log line carries a planted value, and the log
carries neither the uploads' names nor the query strings.

Why a real process, at DEBUG (``CXRKIT_DEBUG=1``): the leak this guards against came from
how the ``cxr`` command sets up logging (pydicom's logger was silenced before pydicom's
import reset it), which an in-process app never exercises; DEBUG is the most talkative
the server gets, so a clean log there is clean at every level.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from .phi_files import FILE_TOKEN, TOKEN, found, write_all

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytestmark = pytest.mark.subprocess  # `cxr serve` in a child process


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``cxr serve`` on a free port with CXRKIT_DEBUG=1; yields (url, lines of its stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "CXRKIT_DEBUG": "1"}
    cmd = [sys.executable, "-m", "cxrkit.cli.main", "serve", "--port", "0", "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="latin-1")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline, url = time.monotonic() + 180, None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found_ = [re.search(r"open (http://127\.0\.0\.1:\d+/)", line) for line in list(lines)]
            url = next((m.group(1) for m in found_ if m), None)
            time.sleep(0.1)
        assert url, "".join(lines)
        yield url, lines
    finally:
        proc.terminate()
        proc.wait(60)
        reader.join(10)


def test_no_planted_identifier_in_any_answer_or_log_line(server, tmp_path):
    url, lines = server
    paths = write_all(tmp_path / "in", file_token=True)
    uploads = [("files", (p.name, p.read_bytes())) for p in paths]
    answers: list[httpx.Response] = []
    echoes: list[httpx.Response] = []  # answers to requests that put the token in the query themselves
    with httpx.Client(base_url=url, timeout=300, trust_env=False) as http:
        for fmt in ("json", "csv", "jsonl"):
            answers.append(http.post(f"/v1/predict?format={fmt}", files=uploads))
            answers.append(http.post(f"/v1/age?format={fmt}", files=uploads))
        rows = answers[0].json()["rows"]
        answers.append(http.post("/v1/export/csv", json={"rows": rows}))
        # one film per request where the route takes one: every unreadable file (its error
        # answer), and three readable ones (a model run each, so not all of them)
        readable = [p for p, r in zip(paths, rows, strict=True) if r["status"] == "ok"]
        for path in [p for p in paths if p not in readable] + readable[:3]:
            one = [("files", (path.name, path.read_bytes()))]
            answers.append(http.post("/v1/explain", files=one))
            answers.append(http.post("/v1/film", files=one))
        valid = [("files", (paths[0].name, paths[0].read_bytes()))]
        answers.append(http.post("/v1/age?format=csv", files=valid, data={"age": "40"}))
        for fmt in ("json", "npy"):
            answers.append(http.post(f"/v1/explain?format={fmt}&label=Effusion", files=valid))
        answers += [http.get("/v1/models"), http.get("/healthz")]
        echoes += [http.post(f"/v1/predict?model={TOKEN}", files=valid),
                   http.post(f"/v1/explain?label={TOKEN}", files=valid),
                   http.get(f"/v1/models?patient={TOKEN}&id={FILE_TOKEN}"),
                   http.get(f"/static/{TOKEN}.png")]
    time.sleep(0.5)  # the last access-log lines

    by_name = {r["file"]: r for r in rows}
    assert len(by_name) == len(paths)
    assert by_name[paths[0].name]["status"] == "ok" and {r["status"] for r in rows} == {"ok", "error"}
    assert [a.status_code for a in answers[:7]] == [200] * 7
    assert {a.status_code for a in answers} <= {200, 415, 422}, [(str(a.request.url), a.status_code) for a in answers]
    for answer in answers:
        blobs = [answer.content, *(f"{k}: {v}".encode() for k, v in answer.headers.items())]
        leaks = [hit for blob in blobs for hit in found(blob)]
        assert not leaks, (str(answer.request.url), leaks)
    assert [a.status_code for a in echoes] == [404, 422, 200, 404], [a.text for a in echoes]

    log = "".join(lines)
    assert "POST /v1/predict 200" in log and "POST /v1/film" in log  # the access log was captured...
    assert not found(log), found(log)  # ...and no planted header value is in any line,
    assert FILE_TOKEN not in log and "phi_" not in log  # nor an upload's name or a query string
