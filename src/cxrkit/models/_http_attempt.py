"""One HTTP request of a resumable download, and how its failures are classified.

Split from :mod:`cxrkit.models.download`, which decides what to do (retry, restart,
give up with a hint); this module only talks to the server and appends bytes to the
``.part`` file, raising :class:`Retryable`, :class:`Fatal` or :class:`Restart`.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version
from pathlib import Path

logger = logging.getLogger("cxrkit.models.download")

#: Size of each read from the network and from disk when hashing.
CHUNK_SIZE = 1 << 20

try:
    _VERSION = _pkg_version("cxrkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "dev"

#: Sent with every request. GitHub (and polite servers in general) expect a UA that
#: names the client, so that its traffic can be told apart from anonymous scripts.
USER_AGENT = f"cxrkit/{_VERSION} Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"

#: Seconds to wait before retry number ``n`` is ``BACKOFF * n``. Kept short: dropped
#: connections are usually transient and the caller may be a test or an interactive CLI.
BACKOFF = 0.2

#: HTTP statuses worth one more try (server-side hiccups); every other 4xx/5xx is final.
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)

ProgressFn = Callable[[int, int | None], None]


class Retryable(Exception):
    """Internal: this attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, *, connect: bool = False):
        super().__init__(reason)
        self.reason = reason
        #: True when nothing was reached at all (refused, DNS): such failures get at
        #: most one quick retry, since an offline machine will not come online by waiting.
        self.connect = connect


class Fatal(Exception):
    """Internal: a failure that retrying will not fix (HTTP 404, 403, a malformed URL)."""


class Restart(Exception):
    """Internal: the .part file cannot be resumed; it was discarded, start from zero now."""


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


def _total_from_headers(status: int, headers: Message) -> int | None:
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


def _range_start(headers: Message) -> int | None:
    cr = headers.get("Content-Range")
    if not cr:
        return None
    m = _CONTENT_RANGE.search(cr)
    if not m or m.group(1) is None:
        return None
    return int(m.group(1))


def part_size(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def attempt(
    url: str,
    part: Path,
    *,
    size: int | None,
    timeout: float,
    progress: ProgressFn | None,
) -> int | None:
    """One HTTP request, appending to ``part``. Returns the expected total size, if known.

    Raises Retryable for failures another attempt may fix, Fatal for those it will
    not, and Restart when the part was discarded and a fresh request should follow
    at once. The caller turns these into DownloadError so that every message names
    the URL and carries the manual hint the same way.
    """
    offset = part_size(part)
    if offset > 0 and size is not None and offset > size:
        logger.warning("%s is larger than the expected %d bytes; discarding it", part, size)
        unlink(part)
        raise Restart()
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
        raise Fatal(f"invalid URL: {err}") from err
    except urllib.error.HTTPError as err:
        with err:
            if err.code == 416 and offset > 0:
                # Range not satisfiable: either the part is already complete or it is
                # longer than (a new version of) the remote file.
                known = size if size is not None else _total_from_headers(416, err.headers)
                if known is not None and offset == known:
                    return known
                logger.warning("server rejected resuming %s at byte %d; starting again from zero", url, offset)
                unlink(part)
                raise Restart() from None
            reason = f"HTTP {err.code} {err.reason}".rstrip()
            if err.code in _TRANSIENT_STATUS:
                raise Retryable(reason) from err
            raise Fatal(reason) from err
    except urllib.error.URLError as err:
        reason, connect = _describe_urlerror(err)
        raise Retryable(reason, connect=connect) from err
    except TimeoutError as err:  # timeout while reading the headers
        raise Retryable(f"timed out after {timeout:g}s waiting for the server") from err
    except (http.client.HTTPException, ConnectionError) as err:
        raise Retryable(f"connection lost: {err!r}") from err

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
                unlink(part)
                raise Restart()
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
                except TimeoutError as err:
                    raise Retryable(f"timed out after {timeout:g}s with no data") from err
                except (http.client.HTTPException, ConnectionError) as err:
                    raise Retryable(f"connection lost: {err!r}") from err
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
                raise Retryable(f"connection closed after {received} of {body_len} bytes")
        elif total is not None and done < total:
            raise Retryable(f"connection closed after {done} of {total} bytes")
    return total
