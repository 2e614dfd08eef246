"""``cxr listen``: a DICOM node (pynetdicom) that answers C-ECHO, takes radiographs by C-STORE and
sends back a structured report of each.

Three threads share the work, joined only by the spool on disk: the association threads
(pynetdicom's) check each object and sync it to the spool before answering success; the
reporter runs the model over what arrived; the forwarder sends the reports. So a slow
model never holds a sender's association open, a destination that is down never stops
films being received, and a kill loses nothing that was acknowledged.

What the node refuses, with the status DICOM defines for it (one log line each, without
patient data): a SOP class that is not a projection radiograph (0x0122, SOP class not
supported: CT, MR, ...), a radiograph class holding what is not one film (0xC000, cannot
understand: multi-frame, a CT modality in a secondary capture), an object it cannot store
(0xA700, out of resources). Associations from AE titles outside ``allow_ae`` are rejected,
as are those that call another AE title.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...dicom import ReportWriter
from ...io.dicom import RADIOGRAPH_MODALITIES
from ...predict import Predictor
from .config import NodeConfig
from .forward import Forwarder
from .spool import Spool

if TYPE_CHECKING:
    from pynetdicom.events import EventHandlerType
from .worker import Reporter

__all__ = ["DicomNode", "RADIOGRAPH_SOP_CLASSES"]

log = logging.getLogger(__name__)

#: storage SOP classes of projection radiographs the node reports on
RADIOGRAPH_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage (digitised films)
})
SOP_CLASS_NOT_SUPPORTED = 0x0122
CANNOT_UNDERSTAND = 0xC000
OUT_OF_RESOURCES = 0xA700


def refusal(sop_class: str, ds: Any) -> tuple[int, str] | None:
    """``(status, reason)`` when the node will not take an object, None when it will."""
    if sop_class not in RADIOGRAPH_SOP_CLASSES:
        return SOP_CLASS_NOT_SUPPORTED, "not a projection radiograph SOP class"
    modality = str(ds.get("Modality", "") or "").upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        return CANNOT_UNDERSTAND, f"modality {modality} is not a radiograph"
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 0
    if frames != 1:
        return CANNOT_UNDERSTAND, "not a single-frame image"
    return None


class DicomNode:
    """A DICOM node reporting on every radiograph it receives; :meth:`run` serves until :meth:`stop`.

    ``runner`` defaults to a :class:`~cxrkit.predict.Predictor` of ``config.model``.
    """

    def __init__(self, config: NodeConfig, runner: Predictor | None = None):
        self.config = config
        self.spool = Spool(config.spool)
        # the backend `cxr predict` picks by default, so a report holds the command's numbers
        self.runner = runner if runner is not None else Predictor(config.model, device=config.device,
                                                                    precision=config.precision, backend="auto")
        reports = ReportWriter(self.spool.outbox, self.runner.card, calibrated=self.runner.calibrated, durable=True)
        self.reporter = Reporter(self.spool, self.runner, reports, config.batch_size)
        d = config.destination
        self.forwarder = None if d is None else Forwarder(
            self.spool, d, config.ae_title, timeout_s=config.timeout_s, first_s=config.retry_first_s,
            most_s=config.retry_max_s, max_pdu=config.max_pdu)
        self._stop, self._arrived, self._reported = threading.Event(), threading.Event(), threading.Event()
        self._server: Any = None
        self.address: tuple[str, int] | None = None

    # --- DIMSE handlers (run on pynetdicom's association threads) ------------------------------
    def _on_echo(self, event: Any) -> int:
        return 0x0000

    def _on_store(self, event: Any) -> int:
        sop_class = str(event.context.abstract_syntax)
        try:
            ds = event.dataset
            problem = refusal(sop_class, ds)
            uid = str(ds.SOPInstanceUID)
        except Exception:
            log.warning("refused an object that could not be decoded")
            return CANNOT_UNDERSTAND
        if problem is not None:
            status, reason = problem
            log.warning("refused a %s object (status 0x%04X): %s", _class_name(sop_class), status, reason)
            return status
        try:
            self.spool.receive(uid, event.encoded_dataset())
        except OSError as exc:
            log.warning("cannot spool a received film (%s): answering out of resources", exc.strerror or exc)
            return OUT_OF_RESOURCES
        except Exception as exc:  # an invalid UID
            log.warning("refused a film: %s", exc)
            return CANNOT_UNDERSTAND
        self._arrived.set()
        return 0x0000

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        """Start listening (returns the bound address; port 0 picks a free one) and the two workers."""
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt

        # pynetdicom makes its SOP classes at import time, so its type information does not list them
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        # pynetdicom logs every PDU and dataset at debug and info level: keep it to warnings, which carry no data
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        c = self.config
        ae = AE(ae_title=c.ae_title)
        ae.maximum_associations = c.max_associations
        ae.maximum_pdu_size = c.max_pdu
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = c.timeout_s
        ae.require_called_aet = True
        if c.allow_ae:
            ae.require_calling_aet = list(c.allow_ae)
        ae.add_supported_context(Verification)
        for context in StoragePresentationContexts:  # every storage class: a CT gets a DIMSE refusal, not silence
            assert context.abstract_syntax is not None  # pynetdicom's storage contexts all name their class
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        handlers: list[EventHandlerType] = [(evt.EVT_C_ECHO, self._on_echo), (evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server((c.host, c.port), block=False, evt_handlers=handlers)
        self.address = self._server.server_address[:2]
        workers = [threading.Thread(target=self.reporter.run, name="cxr-node-report", daemon=True,
                                    args=(self._stop, self._arrived, self._reported, c.poll_s))]
        if self.forwarder is not None:
            workers.append(threading.Thread(target=self.forwarder.run, name="cxr-node-forward", daemon=True,
                                            args=(self._stop, self._reported, c.poll_s)))
        self._workers = workers
        for worker in workers:
            worker.start()
        self._arrived.set()  # films left from a previous run are reported at once
        self._reported.set()
        return self.address

    def stop(self) -> None:
        """Stop taking associations, let the running batch and send finish, then return."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stop.set()
        self._arrived.set()
        self._reported.set()
        for worker in getattr(self, "_workers", []):
            worker.join()

    def run(self, on_ready: Callable[[tuple[str, int]], None] | None = None) -> None:
        """Serve until Ctrl-C (or :meth:`stop` from another thread); in-flight work finishes first."""
        address = self.start()
        if on_ready is not None:
            on_ready(address)
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def _class_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name != uid else "unknown SOP class"
