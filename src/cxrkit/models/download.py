"""Resumable, verified downloads of large weight files.

``cxr models fetch`` pulls published weight files (hundreds of MB, from GitHub
release URLs) into a local cache. Those downloads happen on hospital and cluster
machines with flaky or no internet access, so this module is built around three
promises:

* **Never leave a half-written file under the final name.** Bytes go to
  ``dest + ".part"``; the file is renamed (atomically, ``os.replace``) to ``dest``
  only after its size and sha256 have been checked. Anything found at ``dest`` can
  therefore be trusted as much as the checksum that was given for it.
* **Never download the same bytes twice.** A ``.part`` left by an interrupted run
  (or by a dropped connection in this run) is resumed with an HTTP ``Range`` request.
* **Fail fast and say what to do when offline.** Connection refused / DNS failure /
  HTTP errors raise :class:`~cxrkit.errors.DownloadError` after at most one quick
  retry, and the message carries the caller's ``manual_hint`` (typically "copy the
  file to <cache path>"), because an offline machine will never succeed by waiting.

Only the standard library (``urllib.request``) is used, so the feature adds no
dependency. Proxies configured through the usual ``http_proxy``/``https_proxy``
environment variables are honoured, as urllib does by default.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import Callable, Optional

from ..errors import ChecksumMismatch, DownloadError

__all__ = ["download", "sha256_file", "USER_AGENT", "CHUNK_SIZE"]

logger = logging.getLogger(__name__)

#: Size of each read from the network and from disk when hashing.
CHUNK_SIZE = 1 << 20

try:
    _VERSION = _pkg_version("cxrkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "dev"

#: Sent with every request. GitHub (and polite servers in general) expect a UA that
#: names the client, so that its traffic can be told apart from anonymous scripts.
USER_AGENT = f"cxrkit/{_VERSION} Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"

#: Seconds to wait before retry number ``n`` is ``_BACKOFF * n``. Kept short: dropped
#: connections are usually transient and the caller may be a test or an interactive CLI.
_BACKOFF = 0.2

#: HTTP statuses worth one more try (server-side hiccups); every other 4xx/5xx is final.
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)

ProgressFn = Callable[[int, Optional[int]], None]


def sha256_file(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE) -> str:
    """Return the lowercase hex sha256 of a file, reading it in chunks.

    Chunked so that multi-hundred-MB weight files are hashed without loading them
    into memory.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_size)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


class _Retryable(Exception):
    """Internal: this attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, *, connect: bool = False):
        super().__init__(reason)
        self.reason = reason
        #: True when nothing was reached at all (refused, DNS): such failures get at
        #: most one quick retry, since an offline machine will not come online by waiting.
        self.connect = connect


class _Fatal(Exception):
    """Internal: a failure that retrying will not fix (HTTP 404, 403, a malformed URL)."""


class _Restart(Exception):
    """Internal: the .part file cannot be resumed; it was discarded, start from zero now."""


def _fail(url: str, reason: str, manual_hint: str | None) -> DownloadError:
    msg = f"could not download {url} ({reason})."
    if manual_hint:
        msg += f" {manual_hint}"
    return DownloadError(msg)


def _describe_urlerror(err: urllib.error.URLError) -> tuple[str, bool]:
    """Human reason for a failure to reach the server, and whether it is worth a retry.

    Returns ``(reason, connect_failure)``. Every URLError that is not an HTTPError
    means we never got a response, so all are "connect" failures (one quick retry).
    """
    r = err.reason
    if isinstance(r, socket.gaierror):
        return "host name could not be resolved; is this machine offline?", True
    if isinstance(r, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(r, (TimeoutError, socket.timeout)):
        return "timed out while connecting", True
    if isinstance(r, OSError):
        return f"network error: {r.strerror or r}", True
    return str(r), True


def _total_from_headers(status: int, headers: http.client.HTTPMessage) -> int | None:
    """The full size of the remote file as announced by the server, if it says."""
    cr = headers.get("Content-Range")
    if cr:
        m = _CONTENT_RANGE.search(cr)
        if m and m.group(3) != "*":
            return int(m.group(3))
    if status == 200:
        cl = headers.get("Content-Length")
        if cl and cl.strip().isdigit():
            return int(cl)
    return None


def _range_start(headers: http.client.HTTPMessage) -> int | None:
    cr = headers.get("Content-Range")
    if not cr:
        return None
    m = _CONTENT_RANGE.search(cr)
    if not m or m.group(1) is None:
        return None
    return int(m.group(1))


def _part_size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    progress: ProgressFn | None = None,
    manual_hint: str | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming and verifying; return ``Path(dest)``.

    Args:
        url: http(s) URL. Redirects are followed (GitHub release assets redirect to
            a CDN).
        dest: final path. Parent folders are created. Bytes are written to
            ``dest + ".part"`` and renamed to ``dest`` only once verified.
        sha256: expected hex digest (case-insensitive). Strongly recommended: without
            it an existing ``dest`` is trusted as is and only the size is checked.
        size: expected size in bytes. When omitted, the size announced by the server
            (Content-Length / Content-Range) is used to detect truncated transfers.
        timeout: socket timeout in seconds, for connecting and for each read.
        retries: how many more attempts after a dropped connection, read timeout or
            transient HTTP status (408/429/5xx). Each resumes from the bytes already
            on disk. Connection refused / DNS failure get at most one quick retry,
            whatever this says.
        progress: called as ``progress(done_bytes, total_bytes_or_None)`` after each
            chunk (``done_bytes`` includes bytes resumed from an earlier ``.part``).
        manual_hint: appended to the DownloadError message, typically telling an
            offline user where to copy a manually downloaded file.

    Returns:
        ``Path(dest)``.

    Raises:
        DownloadError: the file could not be fetched (offline, refused, HTTP error,
            repeated dropped connections).
        ChecksumMismatch: the downloaded bytes do not have the expected size or
            sha256; the ``.part`` is deleted and ``dest`` is left untouched.

    Behaviour when ``dest`` already exists: if ``sha256`` is given and matches, it is
    returned without any network access; if ``sha256`` is not given it is returned as
    is (and, when ``size`` is given, only if the size matches). Otherwise it is
    downloaded again and replaced only once the new copy verifies.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    want_sha = sha256.lower().strip() if sha256 else None

    if dest.is_file():
        if _existing_ok(dest, want_sha, size):
            logger.debug("%s already present and verified; not downloading", dest)
            return dest
        logger.warning("%s exists but does not match the expected checksum/size; downloading it again", dest)

    dest.parent.mkdir(parents=True, exist_ok=True)

    failures = 0  # attempts that failed and count against `retries`
    connect_failures = 0  # nothing reached at all: at most one quick retry
    restarts = 0
    restarted_for_checksum = False
    stale_part = _part_size(part)  # bytes left by an earlier call, which may be from another file
    while True:
        try:
            total = _attempt(url, part, size=size, timeout=timeout, progress=progress)
        except _Restart:
            restarts += 1
            if restarts > 3:  # a server that keeps contradicting itself; do not loop forever
                raise _fail(url, "the server keeps answering resume requests inconsistently", manual_hint)
            continue  # the part was discarded; not a failure of the network
        except _Fatal as exc:
            raise _fail(url, str(exc), manual_hint) from exc.__cause__
        except _Retryable as exc:
            failures += 1
            if exc.connect:
                connect_failures += 1
            if failures > retries or connect_failures > 1:
                raise _fail(url, exc.reason, manual_hint) from exc.__cause__
            delay = _BACKOFF * failures
            logger.warning(
                "download of %s interrupted (%s); retry %d/%d in %.1fs, resuming from byte %d",
                url, exc.reason, failures, retries, delay, _part_size(part),
            )
            time.sleep(delay)
            continue

        # The transfer finished; check it before giving it the final name.
        got = _part_size(part)
        if total is not None and got != total:
            # Only possible when the server sent more than it announced, or the
            # caller's `size` disagrees with what the server has: not a network blip.
            _unlink(part)
            raise ChecksumMismatch(
                f"{url}: downloaded {got} bytes but expected {total} bytes; "
                "the file on the server is not the one expected (deleted the partial file)"
            )
        if want_sha is not None:
            actual = sha256_file(part)
            if actual != want_sha:
                _unlink(part)
                if stale_part > 0 and not restarted_for_checksum:
                    # The stale .part may come from an older version of the file (or
                    # another URL); give a clean download from zero one chance.
                    restarted_for_checksum = True
                    logger.warning(
                        "%s: sha256 mismatch after resuming a partial file of %d bytes from an earlier "
                        "run; downloading again from zero",
                        url, stale_part,
                    )
                    continue
                raise ChecksumMismatch(
                    f"{url}: sha256 mismatch: expected {want_sha}, got {actual} "
                    "(the download is corrupt or the file was changed upstream; deleted the partial file)"
                )
        os.replace(part, dest)
        logger.info("downloaded %s -> %s (%d bytes)", url, dest, got)
        return dest


def _existing_ok(dest: Path, want_sha: str | None, size: int | None) -> bool:
    """Whether an already present ``dest`` can be returned without downloading."""
    if size is not None and dest.stat().st_size != size:
        return False
    if want_sha is None:
        return True
    return sha256_file(dest) == want_sha


def _attempt(
    url: str,
    part: Path,
    *,
    size: int | None,
    timeout: float,
    progress: ProgressFn | None,
) -> int | None:
    """One HTTP request, appending to ``part``. Returns the expected total size, if known.

    Raises _Retryable for failures another attempt may fix, _Fatal for those it will
    not, and _Restart when the part was discarded and a fresh request should follow
    at once. The caller turns these into DownloadError so that every message names
    the URL and carries the manual hint the same way.
    """
    offset = _part_size(part)
    if offset > 0 and size is not None and offset > size:
        logger.warning("%s is larger than the expected %d bytes; discarding it", part, size)
        _unlink(part)
        raise _Restart()
    if offset > 0 and size is not None and offset == size:
        return size  # nothing left to fetch; the caller verifies the sha256

    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        logger.info("resuming %s from byte %d", url, offset)
    else:
        logger.info("downloading %s", url)
    req = urllib.request.Request(url, headers=headers)

    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except ValueError as err:  # malformed URL, unknown scheme
        raise _Fatal(f"invalid URL: {err}") from err
    except urllib.error.HTTPError as err:
        with err:
            if err.code == 416 and offset > 0:
                # Range not satisfiable: either the part is already complete or it is
                # longer than (a new version of) the remote file.
                known = size if size is not None else _total_from_headers(416, err.headers)
                if known is not None and offset == known:
                    return known
                logger.warning("server rejected resuming %s at byte %d; starting again from zero", url, offset)
                _unlink(part)
                raise _Restart() from None
            reason = f"HTTP {err.code} {err.reason}".rstrip()
            if err.code in _TRANSIENT_STATUS:
                raise _Retryable(reason) from err
            raise _Fatal(reason) from err
    except urllib.error.URLError as err:
        reason, connect = _describe_urlerror(err)
        raise _Retryable(reason, connect=connect) from err
    except (TimeoutError, socket.timeout) as err:  # timeout while reading the headers
        raise _Retryable(f"timed out after {timeout:g}s waiting for the server") from err
    except (http.client.HTTPException, ConnectionError) as err:
        raise _Retryable(f"connection lost: {err!r}") from err

    with resp:
        status = resp.status
        total = _total_from_headers(status, resp.headers)
        if size is not None:
            if total is not None and total != size:
                logger.warning("%s: server announces %d bytes but %d were expected", url, total, size)
            total = size
        if status == 206:
            start = _range_start(resp.headers)
            if start != offset:
                logger.warning("%s: server answered a range starting at %s instead of %d; restarting",
                               url, start, offset)
                _unlink(part)
                raise _Restart()
            mode = "ab"
        else:
            if offset > 0:
                logger.info("server ignored the Range request for %s; downloading from zero", url)
            offset = 0
            mode = "wb"
        cl = resp.headers.get("Content-Length")
        body_len = int(cl) if cl and cl.strip().isdigit() else None

        done = offset
        received = 0
        last_report = done
        # read1() returns whatever has arrived (at most CHUNK_SIZE) instead of
        # blocking until a full chunk is there: a read(CHUNK_SIZE) that times out
        # loses the bytes it had already taken off the socket, so a stalled
        # connection would cost up to a MiB per retry. Bytes go to the .part file at
        # once (through a CHUNK_SIZE buffer) and survive any failure that follows.
        with open(part, mode, buffering=CHUNK_SIZE) as f:
            if progress is not None:
                progress(done, total)
            while True:
                try:
                    block = resp.read1(CHUNK_SIZE)
                except (TimeoutError, socket.timeout) as err:
                    raise _Retryable(f"timed out after {timeout:g}s with no data") from err
                except (http.client.HTTPException, ConnectionError) as err:
                    raise _Retryable(f"connection lost: {err!r}") from err
                if not block:
                    break
                f.write(block)
                done += len(block)
                received += len(block)
                # Report once per CHUNK_SIZE, not once per (often ~64 KiB) network read.
                if progress is not None and done - last_report >= CHUNK_SIZE:
                    progress(done, total)
                    last_report = done
            if progress is not None and done != last_report:
                progress(done, total)
        # http.client returns b"" (rather than raising) when the server closes early,
        # so compare with what this response announced.
        # A response that delivered all it announced is complete even if it falls
        # short of `size`: the caller then reports a size mismatch, not a network error.
        if body_len is not None:
            if received < body_len:
                raise _Retryable(f"connection closed after {received} of {body_len} bytes")
        elif total is not None and done < total:
            raise _Retryable(f"connection closed after {done} of {total} bytes")
    return total
