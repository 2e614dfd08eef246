"""``cxr serve`` as a user starts it: a real process that prints its URL, logs no file or patient
names, and finishes an in-flight request when told to stop (Ctrl-C)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app as cli


def test_help_lists_the_flags():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--model", "--host", "--port", "--token-file", "--cors-origin", "--max-file-mb", "--queue-size",
                 "--max-inflight-mb", "--decode-seconds", "--decode-workers", "--header-seconds", "--body-seconds"):
        assert flag in result.output


def test_availability_flags_reach_the_server(monkeypatch):
    import cxrkit.serve.server

    seen = {}
    monkeypatch.setattr(cxrkit.serve.server, "run", lambda config, on_ready=None: seen.setdefault("config", config))
    result = CliRunner().invoke(cli, ["serve", "--max-inflight-mb", "300", "--decode-seconds", "5", "--decode-workers",
                                      "3", "--header-seconds", "4", "--body-seconds", "60", "--max-request-mb", "100"])
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.max_inflight_bytes, config.decode_seconds, config.decode_workers, config.header_seconds,
            config.body_seconds) == (300 * 2**20, 5.0, 3, 4.0, 60.0)
    result = CliRunner().invoke(cli, ["serve", "--max-request-mb", "600"])  # over the 512 MB default budget
    assert result.exit_code == 1 and "in-flight upload budget" in result.output



def test_batch_window_reaches_the_server_and_a_negative_one_is_refused(monkeypatch):
    import cxrkit.serve.server
    from cxrkit.errors import InvalidArgument
    from cxrkit.serve import ServeConfig

    seen = []
    monkeypatch.setattr(cxrkit.serve.server, "run", lambda config, on_ready=None: seen.append(config))
    for given, expected in ((None, 5.0), ("0", 0.0), ("25.5", 25.5)):
        result = CliRunner().invoke(cli, ["serve"] + ([] if given is None else ["--batch-window-ms", given]))
        assert result.exit_code == 0, result.output
        assert seen.pop().batch_window_ms == expected
    for bad in ("-1", "1001"):
        result = CliRunner().invoke(cli, ["serve", "--batch-window-ms", bad])
        assert result.exit_code == 2 and "--batch-window-ms" in result.output, result.output
    assert not seen  # refused before anything was loaded
    with pytest.raises(InvalidArgument, match="`batch_window_ms` must lie in 0..1000") as caught:
        ServeConfig(batch_window_ms=-0.5)
    assert "--" not in str(caught.value)  # the library names its parameter, never a flag

def test_bad_flags_fail_before_loading_anything(tmp_path):
    token = tmp_path / "token.txt"
    token.write_text("short\n")
    result = CliRunner().invoke(cli, ["serve", "--token-file", str(token)])
    assert result.exit_code == 1 and "at least 16 characters" in result.output
    result = CliRunner().invoke(cli, ["serve", "--max-file-mb", "300"])
    assert result.exit_code == 1 and "per-file limit is larger" in result.output


@pytest.mark.subprocess
def test_real_process_serves_and_stops_gracefully(example_images, phi_dicom):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cxrkit.cli.main", "serve", "--port", "0", "--threads", "1",
           "--age-model", "none", "--orientation-model", "none"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            found = [re.search(r"open (http://127\.0\.0\.1:\d+/)", line) for line in list(lines)]
            url = next((m.group(1) for m in found if m), None)
            time.sleep(0.1)
        assert url, "".join(lines)
        films = [("files", (p.name, p.read_bytes())) for p in example_images * 3]
        films.append(("files", ("Doe_Jane_chest.dcm", phi_dicom.path.read_bytes())))
        with httpx.Client(base_url=url, timeout=120, trust_env=False) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            answer: dict = {}
            worker = threading.Thread(target=lambda: answer.update(r=http.post("/v1/predict", files=films)))
            worker.start()
            while not http.get("/healthz").json()["busy"]:  # the batch is in the model now
                assert worker.is_alive() and time.monotonic() < deadline
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            worker.join(120)
        response = answer["r"]
        assert response.status_code == 200  # the in-flight request finished despite the stop
        assert [r["status"] for r in response.json()["rows"]] == ["ok"] * len(films)
        assert proc.wait(60) == 0  # a clean stop, no traceback
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    log = "".join(lines)
    assert "POST /v1/predict 200" in log  # one access line per request, route template only
    assert "Traceback" not in log
    for secret in (phi_dicom.patient_name, phi_dicom.patient_id, "Doe_Jane", example_images[0].name):
        assert secret not in log, (secret, log)


def test_port_in_use_is_one_clear_error():
    from cxrkit.errors import CxrkitError
    from cxrkit.serve.server import bind

    first = bind("127.0.0.1", 0)
    try:
        with pytest.raises(CxrkitError, match="cannot listen"):
            bind("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
