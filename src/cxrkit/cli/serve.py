"""``cxr serve``: the web page and REST API on this machine (loopback only unless told otherwise)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ..age import DEFAULT_AGE_MODEL
from ..models import DEFAULT_MODEL
from ..preprocess import DEFAULT_ORIENTATION_MODEL
from . import _options
from ._output import err, speaks_flags


def _optional(name: str) -> str | None:
    return None if name.lower() == "none" else name


@speaks_flags({"models": "model", "cors_origins": "cors_origin"})
def serve(
    model: list[str] = typer.Option([DEFAULT_MODEL], "--model", "-m", help="Classifier to load (repeatable; the first answers by default)."),
    age_model: str = typer.Option(DEFAULT_AGE_MODEL, "--age-model", help="Age model for CXR-Age, or 'none'."),
    orientation_model: str = typer.Option(DEFAULT_ORIENTATION_MODEL, "--orientation-model", help="Orientation model for the upright fix, or 'none'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; the default lets only this machine in."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: any free port; the URL printed says which)."),
    token_file: Path | None = typer.Option(None, "--token-file", exists=True, dir_okay=False, help="File holding a bearer token every /v1 request must send."),
    cors_origin: list[str] = typer.Option([], "--cors-origin", help="Let pages from this origin call the API (repeatable); off by default."),
    max_file_mb: float = typer.Option(50.0, "--max-file-mb", min=0.001, help="Largest accepted file (413 above)."),
    max_request_mb: float = typer.Option(200.0, "--max-request-mb", min=0.001, help="Largest accepted request (413 above)."),
    queue_size: int = typer.Option(16, "--queue-size", min=1, help="Model jobs waiting or running before new ones get 503 + Retry-After."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Films per forward pass within a request."),
    batch_window_ms: float = typer.Option(5.0, "--batch-window-ms", min=0.0, max=1000.0, help="Longest wait for more requests to score in the same batch (0: no waiting, only requests already queued join)."),
    max_inflight_mb: float = typer.Option(512.0, "--max-inflight-mb", min=0.001, help="Uploads held in memory by all requests together (503 + Retry-After above)."),
    decode_seconds: float = typer.Option(30.0, "--decode-seconds", min=0.1, help="Longest decode of one film (its worker is killed past it; the file gets an error row)."),
    decode_workers: int = typer.Option(2, "--decode-workers", min=1, help="Decoder processes (films are decoded outside the server process)."),
    header_seconds: float = typer.Option(10.0, "--header-seconds", min=0.1, help="Time a connection has to send its request headers (then 408 and closed)."),
    body_seconds: float = typer.Option(300.0, "--body-seconds", min=0.1, help="Time a request has to send its whole body (then 408)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: torch's choice)."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
) -> None:
    """Serve the page at / and the API at /v1 (OpenAPI at /docs) until Ctrl-C; in-flight requests finish first."""
    from ..serve import ServeConfig, read_token, run
    from ..serve.config import MB

    config = ServeConfig(
        models=tuple(model), age_model=_optional(age_model), orientation_model=_optional(orientation_model),
        host=host, port=port, token=read_token(token_file) if token_file else None, cors_origins=tuple(cors_origin),
        max_file_bytes=int(max_file_mb * MB), max_request_bytes=int(max_request_mb * MB), queue_size=queue_size,
        batch_size=batch_size, batch_window_ms=batch_window_ms, device=device, precision=precision, threads=threads,
        max_inflight_bytes=int(max_inflight_mb * MB), decode_seconds=decode_seconds, decode_workers=decode_workers,
        header_seconds=header_seconds, body_seconds=body_seconds,
    )
    logging.getLogger("cxrkit.serve").setLevel(logging.INFO)
    err.print(f"cxr serve: loading {', '.join(config.models)}...", highlight=False)
    run(config, on_ready=lambda url: err.print(
        f"cxr serve: open {url} in a browser (API docs: {url}docs); Ctrl-C stops"
        + ("" if config.loopback else f"\n  listening on {host}: other machines can connect"),
        highlight=False, soft_wrap=True))
