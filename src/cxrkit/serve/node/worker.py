"""Turning spooled films into spooled reports, on the same batch engine as ``cxr predict``.

The films in ``incoming/`` go through :func:`cxrkit.predict.predict_files` (read ahead,
batched, one row per file) and each row through the :class:`~cxrkit.dicom.ReportWriter`
that ``cxr predict --dicom-sr`` uses, writing into ``outbox/`` with a sync; a film is
removed only after its report is on disk. A film the model cannot read moves to
``failed/`` with its reason; the log line says why without naming patient or study.
"""

from __future__ import annotations

import logging
import threading

from ...dicom import ReportWriter
from ...predict import Runner, predict_files
from .spool import Spool

__all__ = ["Reporter"]

log = logging.getLogger(__name__)


class Reporter:
    """Runs ``runner`` over the spool's waiting films, ``batch_size`` at a time, and stores their reports."""

    def __init__(self, spool: Spool, runner: Runner, reports: ReportWriter, batch_size: int = 8):
        self.spool, self.runner, self.reports, self.batch_size = spool, runner, reports, batch_size

    def process(self, stop: threading.Event | None = None) -> int:
        """Report on the films waiting now (one batch group at a time, so a stop waits for one group
        only); returns the number of films handled."""
        handled = 0
        films = self.spool.waiting()
        for start in range(0, len(films), self.batch_size):
            if stop is not None and stop.is_set():
                break
            group = films[start:start + self.batch_size]
            for film, row in zip(group, predict_files(group, self.runner, batch_size=self.batch_size), strict=True):
                if row["status"] == "ok":
                    cell = self.reports.cell(row)
                    if cell.startswith("not written"):
                        self.spool.fail(film, cell)
                        log.warning("no report for a received film: %s", cell)
                    else:
                        self.spool.done(film)
                else:
                    self.spool.fail(film, row["error"])
                    log.warning("a received film could not be scored: %s", row["error"])
                handled += 1
        if handled:
            log.info("reported on %d film(s)", handled)
        return handled

    def run(self, stop: threading.Event, wake: threading.Event, on_report: threading.Event, poll_s: float = 0.5) -> None:
        """Process until ``stop``; ``wake`` says a film arrived, ``on_report`` is set when reports were written."""
        while not stop.is_set():
            try:
                if self.process(stop):
                    on_report.set()
            except Exception:  # a failure of one round (disk full) must not end the node: the films stay
                log.warning("reporting failed; the films stay in the spool", exc_info=True)
                stop.wait(poll_s)
            wake.wait(poll_s)
            wake.clear()
