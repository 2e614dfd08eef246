"""Hostile clients for a running ``cxr serve``, each bounded in time, and a ``/healthz`` prober.

Used by ``test_attacks.py`` against a loopback test server, and runnable by hand against
any loopback server to measure ``/healthz`` latency under each attack (the table in
``docs/serve.md``)::

    cxr serve --port 8765 --queue-size 2 &
    python tests/serve/attacks.py http://127.0.0.1:8765

Every attack stops by itself (fixed counts and deadlines) and refuses non-loopback URLs.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx


def jpegls_bomb(side: int = 16000, rows: int = 16, scan_bytes: int = 1000) -> bytes:
    """A small JPEG-LS DICOM whose header says ``rows`` x ``rows`` and codestream ``side`` x ``side``.

    The codestream is SOI, SOF55 (8 bits, one component), SOS, then pairs FF 7F (15
    one-bits each: the longest runs), so it decodes without error for as long as the frame
    is large, holding the GIL in pylibjpeg: 16000 -> ~26 s and 1.3 GB on the reader of
    cxrkit 0.x that took codestream sizes on trust.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless, SecondaryCaptureImageStorage, generate_uid

    code = bytes.fromhex("ffd8fff7000b08") + side.to_bytes(2, "big") * 2 + bytes.fromhex("01011100ffda0008010100000000")
    code += b"\xff\x7f" * (scan_bytes // 2) + b"\xff\xd9"
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = JPEGLSLossless
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "OT", rows, rows, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([code])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"attacks run against loopback addresses only, not {host}")
    return host, parts.port or 80


@dataclass
class Probe:
    """``/healthz`` latencies (s) and statuses (None: no answer within the probe's timeout)."""

    seconds: list[float] = field(default_factory=list)
    statuses: list[int | None] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(status != 200 for status in self.statuses)

    def summary(self) -> str:
        if not self.seconds:
            return "no probe"
        return (f"median {statistics.median(self.seconds) * 1000:.0f} ms, max {max(self.seconds) * 1000:.0f} ms, "
                f"{self.failures}/{len(self.statuses)} not 200")


@contextlib.contextmanager
def probing(url: str, interval: float = 0.25, timeout: float = 10.0) -> Iterator[Probe]:
    """Probe ``/healthz`` on fresh connections every ``interval`` s while the block runs."""
    probe, stop = Probe(), threading.Event()

    def loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status: int | None = httpx.get(url + "/healthz", timeout=timeout, trust_env=False).status_code
            except httpx.HTTPError:
                status = None
            probe.seconds.append(time.perf_counter() - started)
            probe.statuses.append(status)
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        stop.set()
        thread.join(timeout + 1)


def _connect(url: str) -> socket.socket:
    sock = socket.create_connection(_address(url), timeout=5)
    sock.setblocking(True)
    return sock


def _closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before closing (b"" for a bare close), or None if it is still open."""
    sock.settimeout(0.01)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
    except (TimeoutError, BlockingIOError):
        return None
    except OSError:
        return data


def idle_sockets(url: str, count: int = 40, hold: float = 8.0) -> dict[str, Any]:
    """``count`` connections that send nothing for ``hold`` s; how many the server closed meanwhile."""
    with probing(url) as probe:
        socks = [_connect(url) for _ in range(count)]
        time.sleep(hold)
        closed = sum(_closed_by_server(s) is not None for s in socks)
    for s in socks:
        s.close()
    return {"probe": probe, "closed": closed, "count": count}


def slow_headers(url: str, count: int = 10, hold: float = 8.0, every: float = 0.5) -> dict[str, Any]:
    """``count`` connections sending their headers one byte every ``every`` s for ``hold`` s."""
    socks = [_connect(url) for _ in range(count)]
    answers: list[bytes | None] = [None] * count
    with probing(url) as probe:
        for s in socks:
            with contextlib.suppress(OSError):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline and any(a is None for a in answers):
            for i, s in enumerate(socks):
                if answers[i] is None:
                    answers[i] = _closed_by_server(s)
                    if answers[i] is None:
                        with contextlib.suppress(OSError):
                            s.sendall(b"X")
            time.sleep(every)
    for s in socks:
        s.close()
    closed = [a for a in answers if a is not None]
    return {"probe": probe, "closed": len(closed), "count": count, "answered_408": sum(b" 408 " in a for a in closed)}


def endless_body(url: str, hold: float = 10.0, every: float = 0.5) -> dict[str, Any]:
    """A chunked multipart POST whose body never ends (one chunk every ``every`` s, for ``hold`` s)."""
    s = _connect(url)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: multipart/form-data; boundary=b0undary\r\n\r\n")
    part = b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
    started, answer = time.monotonic(), None
    with probing(url) as probe:
        with contextlib.suppress(OSError):
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        while time.monotonic() - started < hold:
            answer = _closed_by_server(s)
            if answer is not None:
                break
            with contextlib.suppress(OSError):
                s.sendall(b"1\r\nx\r\n")
            time.sleep(every)
    s.close()
    status = answer.split(b" ", 2)[1].decode() if answer and answer.startswith(b"HTTP/") else None
    return {"probe": probe, "ended_after": time.monotonic() - started if answer is not None else None,
            "status": status}


def _post_in_thread(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        started = time.perf_counter()
        try:
            out["response"] = fn()
        except httpx.HTTPError as exc:
            out["error"] = type(exc).__name__
        out["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def decoder_bomb(url: str, bomb: bytes, wait: float = 60.0) -> dict[str, Any]:
    """POST ``bomb`` to /v1/predict and probe /healthz until it is answered (at most ``wait`` s)."""
    with probing(url) as probe:
        thread, out = _post_in_thread(lambda: httpx.post(
            url + "/v1/predict", files=[("files", ("bomb.dcm", bomb))], timeout=wait, trust_env=False))
        thread.join(wait + 5)
    response = out.get("response")
    row = response.json()["rows"][0] if response is not None and response.status_code == 200 else {}
    return {"probe": probe, "status": response.status_code if response is not None else out.get("error"),
            "row_status": row.get("status"), "row_error": row.get("error"), "seconds": out.get("seconds")}


def oversize(url: str, megabytes: int = 60) -> dict[str, Any]:
    """An httpx client posting one ``megabytes`` MB file: the status it reads, or the error it gets."""
    data = b"\0" * (megabytes * 1024 * 1024)
    try:
        response = httpx.post(url + "/v1/predict", files=[("files", ("big.png", data))], timeout=60, trust_env=False)
    except httpx.HTTPError as exc:
        return {"status": type(exc).__name__}
    return {"status": response.status_code, "detail": response.json().get("detail")}


def queue_full(url: str, blocker: bytes, clients: int = 4, megabytes: int = 8) -> dict[str, Any]:
    """While ``blocker`` holds the queue, ``clients`` more post ``megabytes`` MB each at once:
    the statuses they read (503 expected) and whether each carried Retry-After."""
    data = b"\0" * (megabytes * 1024 * 1024)
    with probing(url) as probe:
        first, _ = _post_in_thread(lambda: httpx.post(
            url + "/v1/predict", files=[("files", ("bomb.dcm", blocker))], timeout=120, trust_env=False))
        time.sleep(1.0)
        posts = [_post_in_thread(lambda: httpx.post(url + "/v1/predict", files=[("files", ("f.png", data))],
                                                   timeout=60, trust_env=False)) for _ in range(clients)]
        for thread, _ in posts:
            thread.join(70)
        first.join(120)
    statuses = [out["response"].status_code if "response" in out else out.get("error") for _, out in posts]
    retry = [out["response"].headers.get("retry-after") for _, out in posts if "response" in out]
    return {"probe": probe, "statuses": statuses, "retry_after": retry}


def long_boundary(url: str, length: int = 10_000) -> dict[str, Any]:
    boundary = "b" * length
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\nx\r\n--{boundary}--\r\n"
    response = httpx.post(url + "/v1/predict", content=body.encode(), timeout=30, trust_env=False,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return {"status": response.status_code, "detail": response.text[:200]}


def nested_json(url: str, depth: int = 100_000) -> dict[str, Any]:
    body = '{"rows": ' + "[" * depth + "]" * depth + "}"
    response = httpx.post(url + "/v1/export/csv", content=body.encode(), timeout=30, trust_env=False,
                          headers={"Content-Type": "application/json"})
    return {"status": response.status_code, "detail": response.text[:200]}


def big_explain(url: str, side: int = 4000) -> dict[str, Any]:
    """``/v1/explain?format=json`` of a ``side`` x ``side`` PNG (a diagonal ramp: a few KB)."""
    import cv2
    import numpy as np

    ramp = (np.add.outer(np.arange(side), np.arange(side)) % 256).astype(np.uint8)
    ok, png = cv2.imencode(".png", ramp)
    started = time.perf_counter()
    try:
        response = httpx.post(url + "/v1/explain?format=json", files=[("files", ("big.png", png.tobytes()))],
                              timeout=300, trust_env=False)
    except httpx.HTTPError as exc:
        return {"status": type(exc).__name__}
    return {"status": response.status_code, "png_kb": round(len(png) / 1024, 1),
            "answer_mb": round(len(response.content) / 2**20, 2), "seconds": round(time.perf_counter() - started, 1)}


def main(url: str) -> None:
    """Run every attack once against ``url`` and print one table row each."""
    url = url.rstrip("/")
    bomb = jpegls_bomb()
    for name, run in [
        ("40 idle sockets, 12 s", lambda: idle_sockets(url, 40, 12.0)),
        ("10 slow-header sockets, 12 s", lambda: slow_headers(url, 10, 12.0)),
        ("endless chunked body, 20 s", lambda: endless_body(url, 20.0)),
        ("JPEG-LS decoder bomb (1.7 KB)", lambda: decoder_bomb(url, bomb, 120.0)),
        ("queue full (bomb + 4 x 8 MB)", lambda: queue_full(url, bomb)),
        ("60 MB upload from httpx", lambda: oversize(url)),
        ("250 MB upload from httpx", lambda: oversize(url, 250)),
        ("explain JSON, 4000 x 4000 PNG", lambda: big_explain(url)),
        ("10 kB multipart boundary", lambda: long_boundary(url)),
        ("JSON nested 100000 deep", lambda: nested_json(url)),
    ]:
        result = run()
        probe = result.pop("probe", None)
        print(f"| {name} | {probe.summary() if probe else '-'} | {result} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8765")
