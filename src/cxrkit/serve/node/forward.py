"""Sending the spooled reports to their destination by C-STORE, again and again until it takes them.

A PACS goes down for maintenance, a network cable gets pulled: a result must wait, not
vanish. :class:`Forwarder` sends everything in ``outbox/`` over one association, removes
each report only when the destination answered success (or a warning, which DICOM counts
as stored), and after a failure waits before the next attempt: ``first``, twice that,
... up to ``most`` seconds, back to ``first`` once a send succeeds.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Destination
from .spool import Spool

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = ["Forwarder", "STORED"]

log = logging.getLogger(__name__)

#: C-STORE statuses that mean "stored": success and the warnings (coerced, elements discarded, ...)
STORED = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


class Forwarder:
    """Moves reports from a :class:`Spool`'s outbox to ``destination``; ``calling_ae`` is this node's title."""

    def __init__(self, spool: Spool, destination: Destination, calling_ae: str, *, timeout_s: float = 30.0,
                 first_s: float = 1.0, most_s: float = 60.0, max_pdu: int = 65536):
        self.spool, self.destination, self.calling_ae = spool, destination, calling_ae
        self.timeout_s, self.first_s, self.most_s, self.max_pdu = timeout_s, first_s, most_s, max_pdu
        self.delay_s = first_s

    def send_waiting(self) -> bool:
        """Send every unsent report; True when the outbox is empty afterwards."""
        from pydicom import dcmread
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        from pynetdicom import AE

        reports = self.spool.unsent()
        if not reports:
            return True
        if self.destination.url is not None:
            return self._stow(self.destination.url, reports)
        datasets: list[tuple[Path, Dataset]] = []
        for path in reports:
            try:
                datasets.append((path, dcmread(path)))
            except FileNotFoundError:
                continue
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        for sop_class in sorted({str(ds.SOPClassUID) for _, ds in datasets}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = ae.associate(self.destination.host, self.destination.port, ae_title=self.destination.ae_title,
                             max_pdu=self.max_pdu)
        if not assoc.is_established:
            log.warning("destination %s unreachable or refused the association; %d report(s) wait in the spool",
                        self.destination, len(datasets))
            return False
        sent = 0
        try:
            for path, ds in datasets:
                status = assoc.send_c_store(ds)
                code = getattr(status, "Status", None)
                if code in STORED:
                    self.spool.done(path)
                    sent += 1
                else:
                    log.warning("destination %s did not store a report (status %s); it stays in the spool",
                                self.destination, "none" if code is None else f"0x{code:04X}")
                    if not assoc.is_established:
                        break
        finally:
            if assoc.is_established:
                assoc.release()
        if sent:
            log.info("sent %d report(s) to %s", sent, self.destination)
        return sent == len(datasets)

    def _stow(self, url: str, reports: list[Path]) -> bool:
        """Store the reports by STOW-RS, a few per request; each removed once its request succeeded."""
        from ...dicom import store_instances
        from ...errors import CxrkitError

        for start in range(0, len(reports), 16):
            batch = [path for path in reports[start:start + 16] if path.exists()]
            try:
                store_instances(url, batch)
            except CxrkitError as exc:
                log.warning("%s; %d report(s) wait in the spool", exc, len(reports) - start)
                return False
            for path in batch:
                self.spool.done(path)
            log.info("stored %d report(s) at %s", len(batch), self.destination)
        return True

    def run(self, stop: threading.Event, wake: threading.Event, poll_s: float = 0.5) -> None:
        """Send until ``stop`` is set; ``wake`` says a new report is waiting."""
        while not stop.is_set():
            try:
                ok = self.send_waiting()
            except Exception:  # a broken peer must not end the node; the reports stay for the next try
                log.warning("sending to %s failed; the reports stay in the spool", self.destination, exc_info=True)
                ok = False
            if ok:
                self.delay_s = self.first_s
                wake.wait(poll_s)
                wake.clear()
            else:
                stop.wait(self.delay_s)
                self.delay_s = min(self.most_s, self.delay_s * 2)
