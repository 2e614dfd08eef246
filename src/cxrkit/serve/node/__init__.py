"""A DICOM node: radiographs in by C-STORE, structured reports out by C-STORE (``cxr listen``).

>>> from cxrkit.serve.node import DicomNode, NodeConfig, parse_destination
>>> DicomNode(NodeConfig(spool=Path("spool"), destination=parse_destination("ORTHANC@127.0.0.1:4242"))).run()

Needs the ``dicom`` extra (highdicom, pynetdicom): ``pip install "cxrkit[dicom]"``. The
spool (:mod:`.spool`) makes every acknowledged film survive a crash; the forwarder
(:mod:`.forward`) retries a destination that is down; docs/pacs.md sets it up with Orthanc.
"""

from __future__ import annotations

from .config import Destination, NodeConfig, parse_destination
from .scp import RADIOGRAPH_SOP_CLASSES, DicomNode, refusal
from .spool import Spool

__all__ = ["DicomNode", "NodeConfig", "Destination", "parse_destination", "Spool", "RADIOGRAPH_SOP_CLASSES", "refusal"]
