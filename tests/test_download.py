"""Tests for cxrkit.download against a real HTTP server on loopback.

The server is a ThreadingHTTPServer on 127.0.0.1:0 started per test; nothing here
touches any other address. Its handler serves an in-memory payload with Range
support and has switches to misbehave the way real networks and servers do:
cut the connection mid-body, stall, ignore Range, fail once with 503.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from cxrkit.download import download, sha256_file
from cxrkit.errors import ChecksumMismatch, DownloadError

PAYLOAD = random.Random(1234).randbytes(3 * 1024 * 1024 + 123)  # odd size: chunks don't align
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
MIB = 1 << 20


@dataclass
class ServerState:
    """What the handler does, and what it saw. Shared by all handler threads."""

    payload: bytes = PAYLOAD
    requests: list[dict] = field(default_factory=list)
    bytes_sent: int = 0
    cut_at: int | None = None  # send only this many body bytes, then close...
    cut_every_time: bool = False  # ...on every request instead of only the first
    stall_at: int | None = None  # first request: send this many bytes, then go silent
    ignore_range: bool = False  # answer 200 with the whole file even when asked for a range
    fail_first_with: int | None = None  # first request gets this HTTP status
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _write(self, data: bytes) -> None:
        st = self.server.state
        for i in range(0, len(data), 64 * 1024):
            block = data[i : i + 64 * 1024]
            try:
                self.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):
                return
            with st.lock:
                st.bytes_sent += len(block)

    def do_GET(self) -> None:
        st = self.server.state
        with st.lock:
            st.requests.append(
                {"path": self.path, "range": self.headers.get("Range"), "ua": self.headers.get("User-Agent")}
            )
            n = len(st.requests)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/file":
            self.send_error(404, "Not Found")
            return
        if st.fail_first_with is not None and n == 1:
            self.send_error(st.fail_first_with)
            return

        total = len(st.payload)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not st.ignore_range:
            assert rng.startswith("bytes=") and rng.endswith("-"), rng
            start = int(rng[len("bytes=") : -1])
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = st.payload[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        self.end_headers()

        if st.cut_at is not None and (n == 1 or st.cut_every_time):
            self._write(body[: st.cut_at])
            self.wfile.flush()
            return  # HTTP/1.0: the connection closes here, mid-body
        if st.stall_at is not None and n == 1:
            self._write(body[: st.stall_at])
            self.wfile.flush()
            st.release.wait(5)  # the client gives up first; teardown sets it
            return
        self._write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


@dataclass
class Srv:
    base: str
    state: ServerState

    @property
    def file_url(self) -> str:
        return self.base + "/file"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours *_proxy variables; make sure loopback requests stay on loopback."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def srv() -> Iterator[Srv]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.state = ServerState()
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield Srv(f"http://127.0.0.1:{server.server_address[1]}", server.state)
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        t.join(5)


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# 1
def test_success_verifies_and_leaves_no_part(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "w.pt"  # parent folder created on demand
    calls: list[tuple[int, int | None]] = []
    out = download(srv.file_url, dest, sha256=DIGEST.upper(), progress=lambda d, t: calls.append((d, t)))
    assert out == dest
    assert dest.read_bytes() == PAYLOAD
    assert not part_of(dest).exists()
    assert len(srv.state.requests) == 1
    req = srv.state.requests[0]
    assert req["range"] is None
    assert "cxrkit" in req["ua"]
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # Reported about once per MiB (reads are <= 1 MiB), not only at the end: the
    # initial call, at least one in the middle of this 3 MiB file, the final one.
    assert calls[0] == (0, len(PAYLOAD))
    assert len(calls) >= 3


# 2
def test_interrupted_transfer_resumes_with_range(srv: Srv, tmp_path: Path) -> None:
    k = 1_000_000
    srv.state.cut_at = k
    dest = tmp_path / "w.pt"
    download(srv.file_url, dest, sha256=DIGEST, retries=3)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in srv.state.requests] == [None, f"bytes={k}-"]
    assert srv.state.bytes_sent == len(PAYLOAD)  # the first MB crossed the wire once
    assert not part_of(dest).exists()


def test_read_timeout_resumes(srv: Srv, tmp_path: Path) -> None:
    k = 500_000
    srv.state.stall_at = k
    dest = tmp_path / "w.pt"
    t0 = time.monotonic()
    download(srv.file_url, dest, sha256=DIGEST, timeout=0.3)
    assert time.monotonic() - t0 < 3
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in srv.state.requests] == [None, f"bytes={k}-"]


def test_gives_up_after_retries(srv: Srv, tmp_path: Path) -> None:
    srv.state.cut_at = 100_000
    srv.state.cut_every_time = True
    dest = tmp_path / "w.pt"
    with pytest.raises(DownloadError, match="connection closed") as ei:
        download(srv.file_url, dest, sha256=DIGEST, retries=2, manual_hint="copy it to X")
    assert srv.file_url in str(ei.value) and "copy it to X" in str(ei.value)
    assert len(srv.state.requests) == 3
    assert not dest.exists()
    # What did arrive is kept for the next call to resume from.
    assert part_of(dest).read_bytes() == PAYLOAD[:300_000]


# 3
def test_resume_across_calls_transfers_only_remainder(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    part_of(dest).write_bytes(PAYLOAD[:MIB])
    seen: list[tuple[int, int | None]] = []
    download(srv.file_url, dest, sha256=DIGEST, progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in srv.state.requests] == [f"bytes={MIB}-"]
    assert srv.state.bytes_sent == len(PAYLOAD) - MIB
    assert seen[0] == (MIB, len(PAYLOAD))  # progress counts the resumed bytes


def test_complete_part_answered_416_is_accepted(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    part_of(dest).write_bytes(PAYLOAD)
    download(srv.file_url, dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in srv.state.requests] == [f"bytes={len(PAYLOAD)}-"]
    assert srv.state.bytes_sent == 0


def test_stale_part_with_wrong_bytes_is_redownloaded(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    part_of(dest).write_bytes(b"\0" * MIB)  # e.g. left over from an older upstream file
    download(srv.file_url, dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert [r["range"] for r in srv.state.requests] == [f"bytes={MIB}-", None]


# 4
def test_checksum_mismatch_removes_part(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as ei:
        download(srv.file_url, dest, sha256=wrong)
    msg = str(ei.value)
    assert srv.file_url in msg and wrong in msg and DIGEST in msg
    assert not dest.exists()
    assert not part_of(dest).exists()


def test_size_mismatch_raises(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    with pytest.raises(ChecksumMismatch, match="bytes"):
        download(srv.file_url, dest, size=len(PAYLOAD) + 10)
    assert not dest.exists() and not part_of(dest).exists()
    assert len(srv.state.requests) == 1  # a complete response that is too short is not retried


# 5
def test_server_ignoring_range_restarts_from_zero(srv: Srv, tmp_path: Path) -> None:
    srv.state.ignore_range = True
    dest = tmp_path / "w.pt"
    part_of(dest).write_bytes(PAYLOAD[:MIB])
    seen: list[tuple[int, int | None]] = []
    download(srv.file_url, dest, sha256=DIGEST, progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == PAYLOAD  # not the first MB twice
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [r["range"] for r in srv.state.requests] == [f"bytes={MIB}-"]
    assert srv.state.bytes_sent == len(PAYLOAD)


# 6
def test_404_raises_download_error(srv: Srv, tmp_path: Path) -> None:
    url = srv.base + "/missing"
    with pytest.raises(DownloadError) as ei:
        download(url, tmp_path / "w.pt", manual_hint="put it at /cache/w.pt")
    msg = str(ei.value)
    assert url in msg and "404" in msg and "put it at /cache/w.pt" in msg
    assert isinstance(ei.value, OSError)
    assert len(srv.state.requests) == 1  # a 404 is final: no retries
    assert not (tmp_path / "w.pt").exists()


def test_transient_503_is_retried(srv: Srv, tmp_path: Path) -> None:
    srv.state.fail_first_with = 503
    dest = tmp_path / "w.pt"
    download(srv.file_url, dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert len(srv.state.requests) == 2


def test_follows_redirect(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    download(srv.base + "/redirect", dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert [r["path"] for r in srv.state.requests] == ["/redirect", "/file"]


# 7
def test_offline_fails_fast_with_hint(tmp_path: Path) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    url = f"http://127.0.0.1:{port}/w.pt"
    hint = "If this machine is offline, download the file elsewhere and copy it to /cache/w.pt"
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as ei:
        download(url, tmp_path / "w.pt", sha256=DIGEST, retries=5, manual_hint=hint)
    assert time.monotonic() - t0 < 2
    msg = str(ei.value)
    assert url in msg and hint in msg and "refused" in msg


# 8
def test_existing_verified_dest_needs_no_network(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    dest.write_bytes(PAYLOAD)
    assert download(srv.file_url, dest, sha256=DIGEST) == dest
    assert download(srv.file_url, dest) == dest  # no checksum given: trusted as is
    assert srv.state.requests == []


def test_existing_corrupt_dest_is_replaced(srv: Srv, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    dest.write_bytes(PAYLOAD[:-1] + b"!")
    download(srv.file_url, dest, sha256=DIGEST)
    assert dest.read_bytes() == PAYLOAD
    assert len(srv.state.requests) == 1


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(PAYLOAD)
    assert sha256_file(p, chunk_size=1000) == DIGEST
    assert sha256_file(str(p)) == DIGEST
