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
import logging
import os
import time
from pathlib import Path

from ..atomic import replace_durably
from ..errors import ChecksumMismatch, DownloadError
from ._http_attempt import (
    BACKOFF,
    CHUNK_SIZE,
    USER_AGENT,
    Fatal,
    ProgressFn,
    Restart,
    Retryable,
    attempt,
    part_size,
    unlink,
)

__all__ = ["download", "sha256_file", "USER_AGENT", "CHUNK_SIZE"]

logger = logging.getLogger(__name__)


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


def _fail(url: str, reason: str, manual_hint: str | None) -> DownloadError:
    msg = f"could not download {url} ({reason})."
    if manual_hint:
        msg += f" {manual_hint}"
    return DownloadError(msg)


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
    stale_part = part_size(part)  # bytes left by an earlier call, which may be from another file
    while True:
        try:
            total = attempt(url, part, size=size, timeout=timeout, progress=progress)
        except Restart:
            restarts += 1
            if restarts > 3:  # a server that keeps contradicting itself; do not loop forever
                raise _fail(url, "the server keeps answering resume requests inconsistently", manual_hint) from None
            continue  # the part was discarded; not a failure of the network
        except Fatal as exc:
            raise _fail(url, str(exc), manual_hint) from exc.__cause__
        except Retryable as exc:
            failures += 1
            if exc.connect:
                connect_failures += 1
            if failures > retries or connect_failures > 1:
                raise _fail(url, exc.reason, manual_hint) from exc.__cause__
            delay = BACKOFF * failures
            logger.warning(
                "download of %s interrupted (%s); retry %d/%d in %.1fs, resuming from byte %d",
                url, exc.reason, failures, retries, delay, part_size(part),
            )
            time.sleep(delay)
            continue

        # The transfer finished; check it before giving it the final name.
        got = part_size(part)
        if total is not None and got != total:
            # Only possible when the server sent more than it announced, or the
            # caller's `size` disagrees with what the server has: not a network blip.
            unlink(part)
            raise ChecksumMismatch(
                f"{url}: downloaded {got} bytes but expected {total} bytes; "
                "the file on the server is not the one expected (deleted the partial file)"
            )
        if want_sha is not None:
            actual = sha256_file(part)
            if actual != want_sha:
                unlink(part)
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
        replace_durably(part, dest)  # synced: a crash after the rename cannot leave a torn model
        logger.info("downloaded %s -> %s (%d bytes)", url, dest, got)
        return dest


def _existing_ok(dest: Path, want_sha: str | None, size: int | None) -> bool:
    """Whether an already present ``dest`` can be returned without downloading."""
    if size is not None and dest.stat().st_size != size:
        return False
    if want_sha is None:
        return True
    return sha256_file(dest) == want_sha


