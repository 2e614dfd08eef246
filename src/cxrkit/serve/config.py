"""What ``cxr serve`` was asked to do: models, address, limits, access control.

One frozen value built once from the command-line flags (or by a Python caller), checked
up front so a typo fails at start-up with a sentence, not on the first upload an hour later.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..age import DEFAULT_AGE_MODEL
from ..errors import InvalidArgument, InvalidInput, MissingFile
from ..models import DEFAULT_MODEL
from ..predict import PRECISIONS
from ..preprocess import DEFAULT_ORIENTATION_MODEL

__all__ = ["ServeConfig", "read_token", "MB"]

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server.

    ``age_model`` / ``orientation_model`` may be ``None`` to skip loading them (their
    endpoints then answer 404). ``queue_size`` bounds the model jobs waiting or running;
    one more gets 503 with ``Retry-After`` instead of an ever-growing wait.
    Prediction and age requests that meet in the queue are scored together (up to
    ``batch_size`` films, the model's batch): the model waits at most ``batch_window_ms``
    for more of them after taking the first, so a lone request is delayed by that little
    and busy clients share batches instead of each scoring one film; 0 merges only
    requests already waiting.

    The availability limits (see ``docs/serve.md``, "Limits and guarantees") keep one
    client from starving the others: ``header_seconds`` to send a request's headers
    and ``body_idle_seconds`` / ``body_seconds`` for its body (then 408 and the
    connection closes), ``keep_alive_seconds`` for an idle kept-alive connection,
    ``max_connections`` open sockets (far above the queue, so idle sockets cannot
    crowd out ``/healthz``), ``max_inflight_bytes`` of uploads held in memory by all
    requests together, ``decode_seconds`` per film in one of ``decode_workers``
    decoder processes, ``max_render_side`` pixels for explanation maps and overlays,
    and ``max_json_bytes`` for a JSON body.
    """

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    age_model: str | None = DEFAULT_AGE_MODEL
    orientation_model: str | None = DEFAULT_ORIENTATION_MODEL
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    max_file_bytes: int = 50 * MB
    max_request_bytes: int = 200 * MB
    max_files: int = 64
    queue_size: int = 16
    batch_size: int = 8
    batch_window_ms: float = 5.0
    device: str = "cpu"
    precision: str = "auto"
    threads: int | None = None
    graceful_seconds: float = 60.0
    header_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    body_idle_seconds: float = 15.0
    body_seconds: float = 300.0
    max_connections: int = 1000
    max_inflight_bytes: int = 512 * MB
    decode_workers: int = 2
    decode_seconds: float = 30.0
    max_render_side: int = 1024
    max_json_bytes: int = 16 * MB

    def __post_init__(self) -> None:
        problems = []
        if not self.models:
            problems.append("`models` must name at least one classifier")
        if not 0 <= self.port <= 65535:
            problems.append(f"`port` must lie in 0..65535, got {self.port}")
        if self.max_file_bytes < 1 or self.max_request_bytes < 1:
            problems.append("size limits must be positive")
        if self.max_file_bytes > self.max_request_bytes:
            problems.append("the per-file limit is larger than the per-request limit")
        if self.queue_size < 1 or self.batch_size < 1 or self.max_files < 1:
            problems.append("`queue_size`, `batch_size` and the file count limit must be at least 1")
        if self.max_request_bytes > self.max_inflight_bytes:
            problems.append("the per-request limit is larger than the in-flight upload budget")
        if not 0.0 <= self.batch_window_ms <= 1000.0:
            problems.append(f"`batch_window_ms` must lie in 0..1000 (0: no waiting), got {self.batch_window_ms:g}")
        if self.max_json_bytes < 1:
            problems.append("`max_json_bytes` must be positive")
        if min(self.header_seconds, self.keep_alive_seconds, self.body_idle_seconds, self.body_seconds,
               self.decode_seconds) <= 0:
            problems.append("time limits must be positive")
        if self.max_connections <= self.queue_size:
            problems.append("`max_connections` must be larger than `queue_size` (idle sockets would crowd out requests)")
        if self.decode_workers < 1:
            problems.append("`decode_workers` must be at least 1")
        if self.max_render_side < 32:
            problems.append("`max_render_side` must be at least 32 pixels")
        if self.precision not in PRECISIONS:
            problems.append(f"`precision` must be one of {PRECISIONS}, got {self.precision!r}")
        if self.threads is not None and self.threads < 1:
            problems.append("`threads` must be at least 1")
        if self.token is not None and len(self.token) < 16:
            problems.append("the token must be at least 16 characters (e.g. `openssl rand -hex 32 > token.txt`)")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                problems.append(f"`cors_origins` must hold origins like https://host:port, got {origin!r}")
        if problems:
            raise InvalidArgument("cxr serve: " + "; ".join(problems))

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect (the safe default)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def read_token(path: str | os.PathLike[str]) -> str:
    """The bearer token stored in ``path`` (surrounding whitespace stripped).

    A file, not a flag, so the secret never shows in ``ps`` output or shell history.
    """
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MissingFile(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"the token file {path} is not UTF-8 text") from None
    if not token or any(c.isspace() for c in token):
        raise InvalidInput(f"the token file {path} must hold one token without spaces (e.g. `openssl rand -hex 32`)")
    return token
