"""Pointing game (Zhang et al. 2016): does a map's peak fall inside the expert's bounding box?

It needs no threshold on the map, so every method can be scored the same way. A hit
is a peak within ``tolerance`` pixels of the box (15 px in the original paper, at
its image scale). :func:`nih_boxes` reads ChestX-ray14's ``BBox_List_2017.csv``,
whose boxes are in the 1,024 px originals, and rescales them to the files on disk
(the shared copies are 512 px).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from ..io import read_image
from .api import explain
from .errors import UnknownLabel

__all__ = ["PointingResult", "pointing_game", "nih_boxes", "Box"]

log = logging.getLogger(__name__)

#: ChestX-ray14 box labels that differ from the standard vocabulary.
_NIH_RENAMES = {"Infiltrate": "Infiltration"}

Box = tuple[float, float, float, float]  # x, y, w, h in the image file's pixels


@dataclass
class PointingResult:
    """Hits over scored boxes, overall and per label; ``skipped`` boxes were for labels the model lacks."""

    hits: int = 0
    total: int = 0
    skipped: int = 0
    per_label: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    @property
    def accuracy(self) -> float:
        return self.hits / self.total if self.total else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy, "hits": self.hits, "total": self.total, "skipped": self.skipped,
            "per_label": {k: {"hits": v[0], "total": v[1]} for k, v in sorted(self.per_label.items())},
        }


def inside(point: tuple[int, int], box: Box, tolerance: float = 15.0) -> bool:
    """Whether ``(row, col)`` lies in ``box`` grown by ``tolerance`` pixels on every side."""
    row, col = point
    x, y, w, h = box
    return x - tolerance <= col <= x + w + tolerance and y - tolerance <= row <= y + h + tolerance


def nih_boxes(csv_path: str | Path, image_dir: str | Path, *, original_size: int = 1024) -> Iterator[tuple[Path, str, Box]]:
    """``(image path, standard label, box in that file's pixels)`` for every box whose image is present."""
    table = pd.read_csv(csv_path)
    table = table.iloc[:, :6]
    table.columns = ["image", "label", "x", "y", "w", "h"]
    image_dir = Path(image_dir)
    for row in table.itertuples(index=False):
        path = image_dir / str(row.image)
        if not path.is_file():
            continue
        shape = read_image(path).pixels.shape
        sy, sx = shape[0] / original_size, shape[1] / original_size
        label = _NIH_RENAMES.get(str(row.label), str(row.label))
        yield path, label, (row.x * sx, row.y * sy, row.w * sx, row.h * sy)


def pointing_game(
    model: nn.Module, items: Iterable[tuple[Any, str, Box]], method: str = "gradcam", *,
    tolerance: float = 15.0, **options: Any,
) -> PointingResult:
    """Score ``(image, label, box)`` items; labels the model does not predict are counted as skipped."""
    result = PointingResult()
    for image, label, box in items:
        try:
            heat = explain(model, image, label, method, **options)
        except UnknownLabel:
            result.skipped += 1
            continue
        hit = inside(heat.peak(), box, tolerance)
        result.hits += int(hit)
        result.total += 1
        result.per_label[label][0] += int(hit)
        result.per_label[label][1] += 1
        log.debug("%s %s peak=%s box=%s hit=%s", image, label, heat.peak(), box, hit)
    return result
