"""Tests for cxrkit.models.download against a real HTTP server on loopback.

The server is a ThreadingHTTPServer on 127.0.0.1:0 started per test; nothing here
touches any other address. Its handler serves an in-memory payload with Range
support and has switches to misbehave the way real networks and servers do:
cut the connection mid-body, stall, ignore Range, fail once with 503.
"""

from __future__ import annotations

import hashlib
import random
import socket
import time
from pathlib import Path

import pytest

from cxrkit.errors import ChecksumMismatch, DownloadError
from cxrkit.models.download import download, sha256_file

from .conftest import Srv

# the bytes the loopback server of conftest.py serves by default
PAYLOAD = random.Random(1234).randbytes(3 * 1024 * 1024 + 123)
pytestmark = pytest.mark.usefixtures("_no_proxy")
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
MIB = 1 << 20


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
    assert time.monotonic() - t0 < 10  # generous: CI machines are busy; a retry loop would take 30 s+
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
    assert time.monotonic() - t0 < 10  # generous: CI machines are busy; a retry loop would take 30 s+
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
