"""Hostile traffic against a real uvicorn server on loopback: every attack is bounded in time, and
``/healthz`` must keep answering 200 within 1 s while it runs.

The server runs with short limits (seconds instead of the defaults' tens of seconds) so the
whole module stays well under a minute; each limit it exercises is one of ``ServeConfig``'s.
"""

from __future__ import annotations

import io
import socket
import threading
import time

import cv2
import httpx
import numpy as np
import pytest

from cxrkit.errors import CxrkitError
from cxrkit.serve import ServeConfig
from cxrkit.serve.admission import Admission
from cxrkit.serve.config import MB
from cxrkit.serve.errors import ServerBusy
from cxrkit.serve.service import Service
from cxrkit.serve.uploads import Upload

from .attacks import (
    decoder_bomb,
    endless_body,
    idle_sockets,
    jpegls_bomb,
    long_boundary,
    nested_json,
    oversize,
    slow_headers,
)
from .conftest import running_server

LIMITS = dict(header_seconds=1.5, keep_alive_seconds=1.0, body_idle_seconds=2.0, body_seconds=8.0,
              decode_seconds=3.0, queue_size=2, max_render_side=256, max_json_bytes=MB, max_connections=200)


@pytest.fixture(scope="module")
def guarded(service):
    """A server with short limits, its own decoder pool, and the session's models."""
    config = ServeConfig(port=0, precision="fp32", **LIMITS)
    svc = Service(config, models=service.models)
    svc.decoder.start()
    svc.decoder.decode_now([Upload("warm.png", _png(8, 8))] * config.decode_workers)  # the workers are up
    with running_server(config, svc) as live:
        live.service = svc
        yield live
    svc.close()


def _healthy(probe) -> None:
    assert len(probe.statuses) >= 3, "too few probes to say anything"
    assert probe.failures == 0, probe.statuses
    assert max(probe.seconds) < 1.0, probe.summary()


@pytest.mark.slow
def test_idle_sockets_neither_starve_healthz_nor_stay_open(guarded):
    result = idle_sockets(guarded.url, count=40, hold=LIMITS["header_seconds"] + 1.5)
    _healthy(result["probe"])
    assert result["closed"] == 40  # the header deadline closed every one


@pytest.mark.slow
def test_slow_headers_are_cut_at_the_header_deadline_with_408(guarded):
    result = slow_headers(guarded.url, count=10, hold=LIMITS["header_seconds"] + 2.5, every=0.3)
    _healthy(result["probe"])
    assert result["closed"] == 10 and result["answered_408"] == 10


@pytest.mark.slow  # waits out the body time limit
def test_endless_chunked_body_ends_in_408_within_the_body_limit(guarded):
    result = endless_body(guarded.url, hold=LIMITS["body_seconds"] + 5, every=0.3)
    _healthy(result["probe"])
    assert result["status"] == "408"
    assert result["ended_after"] < LIMITS["body_seconds"] + 2


@pytest.mark.slow
def test_pause_in_the_body_ends_in_408(guarded):
    with socket.create_connection(("127.0.0.1", int(guarded.url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(b"POST /v1/export/csv HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"rows\"")
        started = time.monotonic()
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert LIMITS["body_idle_seconds"] - 0.2 < time.monotonic() - started < LIMITS["body_idle_seconds"] + 2


def test_decoder_bomb_is_an_error_row_and_healthz_stays_fast(guarded, files, example_images):
    bomb = jpegls_bomb()
    assert len(bomb) < 2048
    result = decoder_bomb(guarded.url, bomb, wait=30)
    if result["seconds"] is not None and result["seconds"] < 1.0:
        # the reader refuses this bomb from its codestream header before decoding: nothing to wait out
        assert result["probe"].failures == 0, result["probe"].statuses
    else:
        _healthy(result["probe"])
    assert result["status"] == 200 and result["row_status"] == "error"
    assert result["row_error"] and "\n" not in result["row_error"]
    assert result["seconds"] < LIMITS["decode_seconds"] + 10
    # a killed decoder is replaced: the next film reads as usual
    with httpx.Client(base_url=guarded.url, timeout=60, trust_env=False) as http:
        rows = http.post("/v1/predict", files=files(example_images[0])).json()["rows"]
    assert rows[0]["status"] == "ok"


def test_decode_over_the_time_limit_kills_the_worker(guarded):
    pool = guarded.service.decoder
    before = pool.replaced
    started = time.monotonic()
    (value,) = pool.decode_now([Upload("bomb.dcm", jpegls_bomb(side=30000))])
    took = time.monotonic() - started
    if pool.replaced == before:  # the reader refused it quickly (codestream checked against the header)
        assert isinstance(value, str) and took < LIMITS["decode_seconds"]
    else:
        assert value.startswith("decoding took longer than the server's limit of 3 s")
        assert LIMITS["decode_seconds"] - 0.1 < took < LIMITS["decode_seconds"] + 5


def test_time_limit_holds_for_a_legitimate_slow_film(guarded):
    """A film whose header and codestream agree (16 MP, within any pixel limit) still takes far
    longer than 20 ms to read: its worker is killed at the limit and replaced."""
    from cxrkit.serve.decode import DecodePool

    pool = DecodePool(workers=1, seconds=0.02)
    try:
        pool.start()
        time.sleep(0.5)  # the fork server already runs (the module's server started it): a worker is quick
        started = time.monotonic()
        (value,) = pool.decode_now([Upload("slow.dcm", jpegls_bomb(side=4000, rows=4000))])
        assert value == "decoding took longer than the server's limit of 0.02 s per film (a damaged or hostile file?)"
        assert time.monotonic() - started < 5 and pool.replaced == 1
    finally:
        pool.close()


def test_client_that_leaves_has_its_decode_killed(guarded):
    pool = guarded.service.decoder
    before = pool.replaced
    try:
        httpx.post(guarded.url + "/v1/predict", files=[("files", ("bomb.dcm", jpegls_bomb(side=30000)))],
                   timeout=httpx.Timeout(30, read=0.8), trust_env=False)
    except httpx.ReadTimeout:
        pass  # the client left while its film was being decoded
    else:
        pytest.skip("the reader refused this bomb before decoding and answered at once; nothing was left to cancel")
    deadline = time.monotonic() + LIMITS["decode_seconds"] - 0.5
    while pool.replaced == before and time.monotonic() < deadline:
        time.sleep(0.05)
    if pool.replaced == before:
        pytest.skip("the reader refuses this bomb before decoding; nothing was left to cancel")
    assert time.monotonic() < deadline  # killed for the disconnect, not by the decode time limit


@pytest.mark.slow
def test_oversize_upload_from_httpx_reads_413_not_a_reset(guarded):
    result = oversize(guarded.url, megabytes=60)
    assert result["status"] == 413
    assert "50 MB per file" in result["detail"]


def test_full_queue_refusal_is_read_as_503_with_retry_after(guarded):
    release = threading.Event()
    jobs = guarded.app.state.jobs
    blockers = [jobs.submit(release.wait, 30) for _ in range(LIMITS["queue_size"])]
    try:
        data = b"\0" * (8 * MB)
        answers = []
        lock = threading.Lock()

        def post() -> None:
            try:
                response = httpx.post(guarded.url + "/v1/predict", files=[("files", ("f.png", data))],
                                      timeout=30, trust_env=False)
                answer = (response.status_code, response.headers.get("retry-after"))
            except httpx.HTTPError as exc:
                answer = (type(exc).__name__, None)
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(40)
        assert [status for status, _ in answers] == [503] * 4
        assert all(int(retry) >= 1 for _, retry in answers)
    finally:
        release.set()
        for blocker in blockers:
            blocker.result(10)


def test_in_flight_byte_budget_refuses_with_503_before_reading(guarded, files, example_images):
    admission = guarded.app.state.admission
    held = admission.enter(admission.budget - MB)  # uploads of other clients fill the budget
    try:
        response = httpx.post(guarded.url + "/v1/predict", files=[("files", ("f.png", b"\0" * (2 * MB)))],
                              timeout=30, trust_env=False)
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
        assert "MB of uploads in memory" in response.json()["detail"]
    finally:
        held.release()
    assert admission.held_bytes == 0 and admission.requests == 0


def test_admission_counts_slots_and_chunked_bytes():
    admission = Admission(slots=2, budget=10)
    first = admission.enter(None)
    first.cover(6)
    with pytest.raises(ServerBusy, match="MB of uploads"):
        admission.enter(5)
    second = admission.enter(4)
    with pytest.raises(ServerBusy, match="busy"):
        admission.enter(0)
    with pytest.raises(ServerBusy):
        first.cover(7)  # chunked growth past the budget
    first.release()
    first.release()  # releasing twice frees once
    second.release()
    assert admission.requests == 0 and admission.held_bytes == 0
    export = admission.enter(9, queued=5, slot=False)  # bytes only: no slot needed, none taken
    assert admission.requests == 0 and admission.held_bytes == 9
    with pytest.raises(ServerBusy, match="MB of uploads"):
        admission.enter(2, slot=False)
    export.release()
    assert admission.held_bytes == 0


def test_long_multipart_boundary_and_nested_json_are_422(guarded):
    boundary = long_boundary(guarded.url, 10_000)
    assert boundary["status"] == 422 and "boundary" in boundary["detail"]
    nested = nested_json(guarded.url, 100_000)
    assert nested["status"] == 422 and "nested too deeply" in nested["detail"]
    too_big = httpx.post(guarded.url + "/v1/export/csv", content=b"[" + b"1," * MB + b"1]",
                         headers={"Content-Type": "application/json"}, timeout=30, trust_env=False)
    assert too_big.status_code == 413 and "max_json_bytes" in too_big.json()["detail"]


def test_kept_alive_connection_is_closed_when_idle(guarded):
    port = int(guarded.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started, answer = time.monotonic(), b""
        while chunk := s.recv(4096):  # the answer, then the close when the keep-alive time is up
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"}")
        assert LIMITS["keep_alive_seconds"] - 0.2 < time.monotonic() - started < LIMITS["keep_alive_seconds"] + 2


def _png(height: int, width: int) -> bytes:
    rng = np.random.default_rng(0)
    ok, data = cv2.imencode(".png", rng.integers(0, 255, (height, width), dtype=np.uint8))
    assert ok
    return data.tobytes()


def test_explain_and_film_are_drawn_at_a_bounded_size(guarded):
    film = _png(1200, 900)
    side = LIMITS["max_render_side"]
    with httpx.Client(base_url=guarded.url, timeout=120, trust_env=False) as http:
        npy = http.post("/v1/explain?format=npy", files=[("files", ("big.png", film))])
        assert npy.status_code == 200
        heat = np.load(io.BytesIO(npy.content))
        assert max(heat.shape) == side and heat.shape == (side, round(900 * side / 1200))
        assert npy.headers["x-cxrkit-shape"] == f"{heat.shape[0]},{heat.shape[1]}"
        assert npy.headers["x-cxrkit-original-height"] == "1200"
        png = http.post("/v1/explain?format=png&caption=false&height=8192", files=[("files", ("big.png", film))])
        image = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert max(image.shape[:2]) == side
        grey = http.post("/v1/film?height=8192", files=[("files", ("big.png", film))])
        image = cv2.imdecode(np.frombuffer(grey.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.shape == heat.shape


@pytest.mark.parametrize("change, words", [
    ({"header_seconds": 0}, "time limits"),
    ({"decode_seconds": -1}, "time limits"),
    ({"max_connections": 4, "queue_size": 4}, "max_connections"),
    ({"decode_workers": 0}, "decode_workers"),
    ({"max_render_side": 8}, "max_render_side"),
    ({"max_inflight_bytes": 10 * MB}, "in-flight upload budget"),
    ({"max_json_bytes": 0}, "max_json_bytes"),
])
def test_limits_are_checked_at_start(change, words):
    with pytest.raises(CxrkitError, match=words):
        ServeConfig(**change)
