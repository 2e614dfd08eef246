"""What a DICOM node is told: its own AE title and address, where results go, which callers it accepts, its limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidArgument

__all__ = ["Destination", "NodeConfig", "parse_destination"]

_AE_TITLE = re.compile(r"^[ -~]{1,16}$")  # DICOM AE: 16 printable ASCII characters (no backslash)


@dataclass(frozen=True)
class Destination:
    """Where results are stored: a DICOM node by C-STORE (a PACS, a viewer, Orthanc), or with ``url``
    a DICOMweb server by STOW-RS."""

    ae_title: str
    host: str
    port: int
    url: str | None = None

    def __str__(self) -> str:
        return self.url or f"{self.ae_title}@{self.host}:{self.port}"


def _check_ae(title: str, what: str) -> str:
    if not _AE_TITLE.match(title) or "\\" in title or not title.strip():
        raise InvalidArgument(f"{what} {title!r} is not a DICOM AE title (1 to 16 printable ASCII characters, no backslash)")
    return title


def parse_destination(text: str) -> Destination:
    """``AE@host:port`` or ``dicomweb+http(s)://host/path`` -> :class:`Destination`."""
    from ...dicom import dicomweb_url

    url = dicomweb_url(text.strip())
    if url is not None:
        return Destination("", "", 0, url=url)
    match = re.fullmatch(r"(?P<ae>[^@]+)@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})", text.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise InvalidArgument(f"the destination {text!r} is not of the form AE@host:port (e.g. ORTHANC@127.0.0.1:4242)")
    return Destination(_check_ae(match["ae"], "the destination's AE title"), match["host"].strip("[]"), int(match["port"]))


@dataclass(frozen=True)
class NodeConfig:
    """Settings of :class:`~cxrkit.serve.node.DicomNode`.

    ``host`` defaults to loopback: a node reachable from the hospital network is a
    decision, not a default. ``allow_ae`` (empty: any caller) lists the calling AE titles
    whose associations are accepted. ``max_associations`` and ``max_pdu`` bound what one
    sender can make the node hold in memory; ``retry_max_s`` caps the back-off between
    attempts to reach a destination that is down.
    """

    spool: Path
    destination: Destination | None = None
    ae_title: str = "CXRKIT"
    host: str = "127.0.0.1"
    port: int = 11112
    model: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    batch_size: int = 8
    allow_ae: tuple[str, ...] = ()
    max_associations: int = 4
    max_pdu: int = 65536
    timeout_s: float = 30.0
    retry_first_s: float = 1.0
    retry_max_s: float = 60.0
    poll_s: float = 0.5

    def __post_init__(self) -> None:
        _check_ae(self.ae_title, "the node's AE title")
        for title in self.allow_ae:
            _check_ae(title, "the allowed AE title")
        if self.max_associations < 1 or self.batch_size < 1:
            raise InvalidArgument("the association limit and the batch size must be at least 1")
        if self.max_pdu and self.max_pdu < 4096:
            raise InvalidArgument(f"a maximum PDU of {self.max_pdu} bytes is too small (at least 4096, or 0 for unlimited)")
