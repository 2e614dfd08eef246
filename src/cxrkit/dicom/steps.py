"""DICOM results as extras of a batch run: a structured report, and the top finding's overlay, per DICOM film.

:class:`Reports` and :class:`Overlays` are what :func:`cxrkit.predict.predict_to_file` (and
:func:`cxrkit.age.age_to_file`, reports only) take: a folder, bound to the run's model card
when the run starts. Each row gets a cell naming the object written, or why none was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .overlay import OVERLAY_COLUMN, OverlayWriter
from .results import COLUMN, ReportWriter

if TYPE_CHECKING:
    from ..predict.to_file import RowColumns

__all__ = ["Overlays", "Reports"]


def _row_columns(complete: Any, column: str) -> RowColumns:
    # deferred: reading and writing DICOM needs no model runtime until a run asks for one
    from ..predict.to_file import RowColumns

    return RowColumns(complete, (column,))


@dataclass(frozen=True)
class Reports:
    """One DICOM structured report (TID 1500, as IHE AI Results asks) per DICOM film, into ``folder``,
    filed in the film's study; the ``dicom_sr`` column gives its path or why none was written.

    ``kind`` is ``findings`` or ``age`` (:data:`~cxrkit.dicom.KINDS`); None reads it from the
    runner: ``age`` for one whose rows hold ``cxr_age``, else ``findings``.
    """

    folder: str | os.PathLike[str]
    kind: str | None = None

    def attach(self, runner: Any, files: Sequence[Path]) -> RowColumns:
        kind = self.kind or ("age" if "cxr_age" in getattr(runner, "columns", ()) else "findings")
        writer = ReportWriter(self.folder, runner.card, kind=kind, calibrated=bool(getattr(runner, "calibrated", True)))
        return _row_columns(writer, COLUMN)


@dataclass(frozen=True)
class Overlays:
    """The top finding's heat-map overlay of each DICOM film as a Secondary Capture in the film's
    study, into ``folder``; the ``dicom_overlay`` column gives its path or why none was written.
    It needs the run's heat maps (their ``maps`` column)."""

    folder: str | os.PathLike[str]
    maps: str = "heatmaps"

    def attach(self, runner: Any, files: Sequence[Path]) -> RowColumns:
        return _row_columns(OverlayWriter(self.folder, runner.card, maps=self.maps), OVERLAY_COLUMN)
