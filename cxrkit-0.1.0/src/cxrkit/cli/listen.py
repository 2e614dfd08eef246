"""``cxr listen``: a DICOM node that reports on every radiograph sent to it (loopback only unless told otherwise)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ..models import DEFAULT_MODEL
from . import _options
from ._output import err, speaks_flags


@speaks_flags()
def listen(
    spool: Path = typer.Option(..., "--spool", help="Folder holding received films and unsent reports; survives restarts."),
    forward_to: str | None = typer.Option(None, "--forward-to", help="Where reports go: AE@host:port by C-STORE (e.g. ORTHANC@127.0.0.1:4242), or dicomweb+http://host/dicom-web by STOW-RS. Without it they stay in SPOOL/outbox."),
    ae_title: str = typer.Option("CXRKIT", "--ae-title", help="This node's AE title; associations calling another are rejected."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; the default lets only this machine in."),
    port: int = typer.Option(11112, "--port", min=0, max=65535, help="TCP port (0: any free port; the line printed says which)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model id, TorchXRayVision name or .safetensors file."),
    allow_ae: str = typer.Option("", "--allow-ae", help="Accept associations only from these calling AE titles (comma-separated); any when empty."),
    max_associations: int = typer.Option(4, "--max-associations", min=1, help="Associations served at once; more are rejected."),
    max_pdu: int = typer.Option(65536, "--max-pdu", min=0, help="Largest PDU accepted, in bytes (0: unlimited)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Films per forward pass."),
    retry_max: float = typer.Option(60.0, "--retry-max", min=0.1, help="Longest wait, in seconds, between attempts to reach a destination that is down."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
) -> None:
    """Answer C-ECHO and C-STORE; report on each radiograph received and send the report (DICOM SR) on.

    A film is acknowledged only once it is on disk in the spool; reports wait there until
    the destination took them. Ctrl-C finishes the running batch and send, then stops.
    """
    from ..serve.node import DicomNode, NodeConfig, parse_destination

    allowed = tuple(title.strip() for title in allow_ae.split(",") if title.strip())
    config = NodeConfig(spool=spool, destination=parse_destination(forward_to) if forward_to else None,
                        ae_title=ae_title, host=host, port=port, model=model, device=device, precision=precision,
                        batch_size=batch_size, allow_ae=allowed, max_associations=max_associations, max_pdu=max_pdu,
                        retry_max_s=retry_max)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("cxrkit.serve.node").setLevel(logging.INFO)
    err.print(f"cxr listen: loading {model}...", highlight=False)
    node = DicomNode(config)
    where = f", reports to {config.destination}" if config.destination else ", reports kept in the spool"
    node.run(on_ready=lambda address: err.print(
        f"cxr listen: {ae_title} on {address[0]}:{address[1]}{where} (Ctrl-C stops)", highlight=False, soft_wrap=True))
