"""Heatmaps alongside batch prediction: one overlay per image and label, written next to the scores.

``cxr predict --heatmaps DIR`` hands every finished row to :class:`HeatmapWriter`,
which picks the labels to explain from that row's own scores (``top3``), from the
model (``all``) or from a list of names, writes one PNG per label and returns the
paths for the row's ``heatmaps`` column.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..io import XrayImage, read_image
from .api import METHODS, explain
from .errors import ExplainError, UnknownMethod
from .overlay import render_overlay, save_png

__all__ = ["HeatmapWriter", "parse_label_spec"]


def parse_label_spec(spec: str) -> str | list[str]:
    """``"top3"``, ``"topK"``, ``"all"`` or comma-separated names -> the form :class:`HeatmapWriter` takes."""
    spec = spec.strip()
    if spec == "all" or re.fullmatch(r"top\d+", spec):
        return spec
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise ExplainError("--heatmap-labels needs top3, all, or label names separated by commas")
    return names


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "label"


class HeatmapWriter:
    """Writes overlays for prediction rows into ``folder``; one instance per run (it keeps names unique)."""

    def __init__(
        self, model: nn.Module, folder: str | Path, *, method: str = "gradcam", labels: str | Sequence[str] = "top3",
        height: int | None = None, **options: Any,
    ):
        if method not in METHODS:
            raise UnknownMethod(f"unknown heatmap method {method!r}; choose one of {', '.join(METHODS)}")
        self.model = model
        self.folder = Path(folder)
        self.method = method
        self.labels = parse_label_spec(labels) if isinstance(labels, str) else list(labels)
        self.height = height
        self.options = options
        trained = list(model.card.trained_labels)
        if isinstance(self.labels, list):
            unknown = [name for name in self.labels if name not in trained]
            if unknown:
                raise ExplainError(f"--heatmap-labels: {model.card.name} does not predict {unknown}; it predicts {trained}")
        self._stems: dict[str, str] = {}
        self.folder.mkdir(parents=True, exist_ok=True)

    def labels_for(self, scores: Mapping[str, float]) -> list[str]:
        """The labels to draw for one row: its k best trained labels, all of them, or the names given."""
        trained = list(self.model.card.trained_labels)
        if isinstance(self.labels, list):
            return self.labels
        if self.labels == "all":
            return trained
        k = int(self.labels[3:])
        ranked = [(float(scores[n]), n) for n in trained if n in scores and not math.isnan(float(scores[n]))]
        ranked.sort(key=lambda pair: -pair[0])
        return [name for _, name in ranked[:k]]

    def _stem(self, file: str) -> str:
        """File stem, made unique across folders with a short hash of the full path when needed."""
        if file in self._stems:
            return self._stems[file]
        stem = _slug(Path(file).stem)
        if stem in self._stems.values():
            stem = f"{stem}-{hashlib.sha1(file.encode()).hexdigest()[:8]}"
        self._stems[file] = stem
        return stem

    def __call__(self, file: str | Path, scores: Mapping[str, float], image: XrayImage | None = None) -> list[Path]:
        """Explain and draw each chosen label for ``file``; returns the PNG paths in label order."""
        image = image if image is not None else read_image(file)
        stem = self._stem(str(file))
        paths = []
        for label in self.labels_for(scores):
            heat = explain(self.model, image, label, self.method, **self.options)
            out = self.folder / f"{stem}.{_slug(label)}.{_slug(self.method)}.png"
            paths.append(save_png(render_overlay(image.pixels, image.maxval, heat, height=self.height), out))
        return paths
