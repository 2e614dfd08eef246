"""Heat maps as an extra of a batch run: one overlay per film and label beside the scores.

:class:`Heatmaps` is what :func:`cxrkit.predict.predict_to_file` (and
:func:`cxrkit.age.age_to_file`, as saliency maps) takes: the settings of a
:class:`~cxrkit.explain.HeatmapWriter`, bound to the run's model, film steps and whole input
list when the run starts; each finished batch's ok rows get the paths of their maps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CxrkitError
from ..predict.to_file import RowColumns
from .batch import HeatmapWriter

__all__ = ["Heatmaps", "add_maps"]


def add_maps(rows: list[dict[str, Any]], draw: Callable[[str, dict[str, Any]], list[Path]], column: str) -> None:
    """Fill each ok row's ``column`` with the ``;``-joined paths ``draw`` writes for it; a map that
    fails is noted in the row's error cell, never fatal to a batch of thousands."""
    for row in rows:
        row[column] = ""
        if row["status"] != "ok":
            continue
        try:
            row[column] = ";".join(str(p) for p in draw(row["file"], row))
        except Exception as exc:
            reason = str(exc) if isinstance(exc, CxrkitError) else f"unexpected {type(exc).__name__}: {exc}"
            row["error"] = f"{column} failed: {reason}"


@dataclass(frozen=True)
class Heatmaps:
    """Explanation overlays of each scored film, written into ``folder``.

    ``method`` is one of :data:`~cxrkit.explain.METHODS`; ``labels`` is ``top3`` (the row's
    three highest scores), ``all`` or label names (a list, or one string separated by
    commas); ``raw`` also keeps each map as ``<image>.<label>.<method>.npy`` (float32, the
    film's pixels), e.g. for scoring localisation. ``column`` names the row's column of map
    paths. ``on_film`` draws on the film as scored (after the run's film steps); False draws
    on the film as found.
    """

    folder: str | os.PathLike[str]
    method: str = "gradcam"
    labels: str | Sequence[str] = "top3"
    raw: bool = False
    column: str = "heatmaps"
    on_film: bool = True

    def attach(self, runner: Any, files: Sequence[Path]) -> RowColumns:
        """The writer for ``runner`` (a :class:`~cxrkit.predict.Predictor` or an age estimator): its
        model, calibration, device and film steps; ``files`` fixes every map's name up front."""
        draw = HeatmapWriter(runner.model, Path(self.folder), method=self.method, labels=self.labels,
                             calibrate=bool(getattr(runner, "calibrated", True)), device=str(runner.device),
                             film=runner.film if self.on_film else None, files=files, raw=self.raw)
        column = self.column
        return RowColumns(lambda rows: add_maps(rows, draw, column), (column,))
