"""The node's spool: every received film and every unsent result, on disk, so a crash loses nothing.

A film is acknowledged (C-STORE success) only after it is synced to ``incoming/``; its
report is synced to ``outbox/`` before the film is removed; a report leaves ``outbox/``
only after the destination acknowledged it. A kill at any point leaves each object in
one of the three folders (or, between a rename and a removal, in two), and the restart
redoes the step it was in. Redoing is harmless because a report's UIDs are derived from
the film and the model: the destination receives the same instance again and keeps one.
Films the model cannot read go to ``failed/`` with a one-line reason beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...atomic import remove_temporaries, write_bytes_atomic, write_text_atomic
from ...errors import InvalidInput

__all__ = ["Spool"]

_UID_CHARS = set("0123456789.")


def _name(uid: str) -> str:
    """A file name from a UID, refusing anything that is not one (no path tricks from the network)."""
    uid = str(uid).strip()
    if not uid or len(uid) > 64 or not set(uid) <= _UID_CHARS or uid.startswith(".") or ".." in uid:
        raise InvalidInput("the object's SOP Instance UID is not a valid UID")
    return f"{uid}.dcm"


class Spool:
    """Folders ``incoming/``, ``outbox/`` and ``failed/`` under ``root``; created if missing."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.incoming, self.outbox, self.failed = (self.root / name for name in ("incoming", "outbox", "failed"))
        for folder in (self.incoming, self.outbox, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
            remove_temporaries(folder)  # half-written files of a killed run: never acknowledged, never sent

    def receive(self, sop_instance_uid: str, encoded: bytes) -> Path:
        """Store one received object (a DICOM file's bytes) durably in ``incoming/``."""
        return write_bytes_atomic(self.incoming / _name(sop_instance_uid), encoded, durable=True)

    @staticmethod
    def _listing(folder: Path) -> list[Path]:
        """``*.dcm`` of a folder, oldest first (the order they arrived in)."""
        found = []
        for path in folder.glob("*.dcm"):
            try:
                found.append((path.stat().st_mtime_ns, path.name, path))
            except FileNotFoundError:  # removed meanwhile
                continue
        return [path for *_, path in sorted(found)]

    def waiting(self) -> list[Path]:
        """Films received and not yet reported on."""
        return self._listing(self.incoming)

    def unsent(self) -> list[Path]:
        """Reports not yet acknowledged by the destination."""
        return self._listing(self.outbox)

    def fail(self, film: Path, reason: str) -> None:
        """Move a film the model could not use to ``failed/``, its reason in ``<name>.txt`` beside it."""
        write_text_atomic(self.failed / f"{film.name}.txt", reason + "\n")
        os.replace(film, self.failed / film.name)

    @staticmethod
    def done(path: Path) -> None:
        """Forget a film that has its report, or a report the destination has."""
        path.unlink(missing_ok=True)

    def counts(self) -> dict[str, int]:
        return {"incoming": len(self.waiting()), "outbox": len(self.unsent()),
                "failed": len(list(self.failed.glob("*.dcm")))}
