"""Heatmaps alongside batch prediction: one overlay per image and label, written next to the scores.

Batch prediction with heatmaps (``cxr predict``) hands every finished row to :class:`HeatmapWriter`,
which picks the labels to explain from that row's own scores (``top3``), from the
model (``all``) or from a list of names, writes one PNG per label over the film as
scored (after the same film steps) and returns the paths for the row's ``heatmaps``
column.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..atomic import atomic_path, remove_temporaries
from ..io import XrayImage, read_image
from ..models import DEFAULT_MODEL, card_of, load_model
from ..preprocess import FilmSteps
from .api import METHODS, check_method, explain, prepare_film
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
        raise ExplainError(f"heatmap labels {spec!r}: give top3 (any topK), all, or label names separated by commas")
    return names


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "label"


class HeatmapWriter:
    """Writes overlays for prediction rows into ``folder``; one instance per run (it keeps names unique).

    ``film`` must be the :class:`~cxrkit.preprocess.FilmSteps` the scores came from, so
    each map is computed on, and drawn over, the film as scored (cleaned, turned upright).
    The steps are deterministic, so running them again here gives that same film.
    ``files`` (the run's whole input list, in order) fixes each file's name before any
    is written: two films with one stem (``a/x.png``, ``b/x.dcm``) get the same names
    whether the run goes through in one go or is resumed after some rows were done. A
    killed run can leave half-written temporary files (never a half-written map); the
    next writer over the folder removes them.
    """

    def __init__(
        self, model: nn.Module | str | None, folder: str | Path, *, method: str = "gradcam",
        labels: str | Sequence[str] = "top3", height: int | None = None, calibrate: bool = True,
        device: str = "cpu", film: FilmSteps | None = None, files: Sequence[str | Path] = (),
        options: Mapping[str, Any] | None = None, raw: bool = False,
    ):
        if method not in METHODS:
            raise UnknownMethod(f"unknown heatmap method {method!r}; choose one of {', '.join(METHODS)}")
        self.options = dict(options or {})
        check_method(method, self.options)
        self.model = load_model(model, default=DEFAULT_MODEL, device=device, keep_mode=True)
        self.folder = Path(folder)
        self.method = method
        self.labels = parse_label_spec(labels) if isinstance(labels, str) else list(labels)
        self.height = height
        self.calibrate = calibrate
        self.device = device
        self.film = film
        self.raw = raw  # also keep each map itself (float32, film geometry) as <same name>.npy, for scoring
        trained = list(card_of(self.model).trained_labels)
        if isinstance(self.labels, list):
            unknown = [name for name in self.labels if name not in trained]
            if unknown:
                raise ExplainError(f"heatmap labels: {card_of(self.model).name} does not predict {unknown}; it predicts {trained}")
        self._stems: dict[str, str] = {}
        self._taken: set[str] = set()
        for file in files:
            self._stem(str(file))
        self.folder.mkdir(parents=True, exist_ok=True)
        for suffix in ("png", "npy"):  # half-written maps of a killed run
            remove_temporaries(self.folder, f"*.{suffix}")

    def labels_for(self, scores: Mapping[str, float]) -> list[str]:
        """The labels to draw for one row: its k best trained labels, all of them, or the names given."""
        trained = list(card_of(self.model).trained_labels)
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
        if stem in self._taken:  # a set: naming every input of a 100,000-film run up front stays linear
            stem = f"{stem}-{hashlib.sha1(file.encode()).hexdigest()[:8]}"
        self._stems[file] = stem
        self._taken.add(stem)
        return stem

    def __call__(self, file: str | Path, scores: Mapping[str, float], image: XrayImage | None = None) -> list[Path]:
        """Explain and draw each chosen label for ``file``; returns the PNG paths in label order.

        Each PNG is written atomically, and the row that lists them is written after the
        last one, so a row on disk always names complete files.
        """
        scan = prepare_film(image if image is not None else read_image(file), self.film)
        stem = self._stem(str(file))
        paths = []
        for label in self.labels_for(scores):
            heat = explain(self.model, scan, label, self.method, calibrate=self.calibrate, device=self.device,
                           **self.options)
            out = self.folder / f"{stem}.{_slug(label)}.{_slug(self.method)}.png"
            if self.raw:
                with atomic_path(out.with_suffix(".npy")) as temp, open(temp, "wb") as handle:
                    np.save(handle, heat.array.astype(np.float32), allow_pickle=False)
            paths.append(save_png(render_overlay(scan.pixels, scan.maxval, heat, height=self.height), out))
        return paths
