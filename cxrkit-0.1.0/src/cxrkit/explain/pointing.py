"""Pointing game (Zhang et al. 2016): does a map's peak fall inside the expert's bounding box?

It needs no threshold on the map, so every method can be scored the same way. A hit
is a peak within ``tolerance`` pixels of the box (15 px in the original paper, at
its image scale). :func:`nih_boxes` reads ChestX-ray14's ``BBox_List_2017.csv``
through the NIH dataset's own box declaration (boxes in the release's 1,024 px PNGs)
and rescales them to the files on disk (the shared copies are 512 px).

This runs a model; scoring maps already written (hit rate with its interval, IoU, a
random-map baseline) is :mod:`cxrkit.evaluate.localisation`. Both use the per-map
geometry of :mod:`cxrkit.preprocess.geometry`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..datasets import get_spec
from ..datasets.localisation import read_annotations
from ..io import read_image
from ..preprocess.geometry import point_in_boxes, scale_boxes, xywh_to_xyxy
from .api import explain
from .errors import UnknownLabel

__all__ = ["PointingResult", "pointing_game", "nih_boxes", "Box"]

log = logging.getLogger(__name__)

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
    """Whether pixel ``(row, col)`` lies in ``box`` (x, y, w, h) grown by ``tolerance`` pixels on every side."""
    return point_in_boxes(point, xywh_to_xyxy([box]), tolerance)


def nih_boxes(csv_path: str | Path, image_dir: str | Path, *, original_size: int = 1024) -> Iterator[tuple[Path, str, Box]]:
    """``(image path, standard label, box x, y, w, h in that file's pixels)`` for every box whose image is present."""
    table = read_annotations(get_spec("nih"), Path(csv_path))
    image_dir = Path(image_dir)
    for row in table.itertuples(index=False):
        path = image_dir / str(row.key)
        if not path.is_file():
            continue
        shape = read_image(path).pixels.shape
        x0, y0, x1, y1 = scale_boxes([[row.x0, row.y0, row.x1, row.y1]], (original_size, original_size), shape)[0]
        yield path, str(row.label), (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


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
