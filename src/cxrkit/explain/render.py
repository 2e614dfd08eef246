"""Explanations to files: one overlay (or a contact sheet of several maps), the raw maps, a summary.

This is ``cxr explain`` as a library call, so the command, notebooks and the server
draw the same pictures under the same names; the command itself only checks its
flags and prints the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import XrayImage
from ..preprocess import FilmSteps
from .api import explain_grid
from .errors import ExplainError
from .overlay import contact_sheet, render_overlay, save_png

__all__ = ["default_output", "explain_to_files"]


def default_output(image: str | Path, methods: Sequence[str], grid: bool) -> Path:
    """``IMAGE-STEM.METHOD.png`` for one map (``+`` spelled ``p``), ``IMAGE-STEM.grid.png`` for a sheet."""
    stem = Path(image).stem
    return Path(f"{stem}.grid.png") if grid else Path(f"{stem}.{methods[0].replace('+', 'p')}.png")


def explain_to_files(
    model: nn.Module | str | None,
    image: str | Path | XrayImage | np.ndarray,
    *,
    labels: Sequence[str | int] = ("top",),
    methods: Sequence[str] = ("gradcam",),
    options: dict[str, dict[str, Any]] | None = None,
    output: str | Path | None = None,
    raw: str | Path | None = None,
    grid: bool = False,
    columns: int | None = None,
    height: int | None = None,
    alpha: float = 0.5,
    calibrate: bool = True,
    device: str | torch.device = "cpu",
    maxval: float | None = None,
    film: FilmSteps | None = None,
) -> dict[str, Any]:
    """Explain ``image`` for every label x method and write the picture (and ``raw`` maps as .npy).

    Model first, as in :func:`~cxrkit.explain.explain` and every runner (None: the default model).

    One label and one method make one overlay at the film's own size (or ``height``);
    several need ``grid=True``: a contact sheet of the plain film and every map, tiles
    ``height`` (default 512) px tall, wrapped after ``columns``. ``output`` defaults to
    :func:`default_output` of a path image. The maps lie on the film as scored (after
    the ``film`` steps). Returns what a report needs: image, model, output, raw, and per
    map its label, method, score, peak (None when the map is empty) and seconds.
    """
    if len(labels) * len(methods) > 1 and not grid:
        raise ExplainError("several labels or methods make several maps: draw them on one contact sheet (grid=True)")
    if output is None:
        if not isinstance(image, (str, Path)):
            raise ExplainError("name the output file: an image given as pixels has no file name to derive one from")
        output = default_output(image, methods, grid)
    heatmaps = explain_grid(model, image, labels, methods, options, calibrate=calibrate, device=device,
                            maxval=maxval, film=film)
    scan = heatmaps[0].film
    assert scan is not None  # every map explain_grid draws lies on the film it was computed from
    if grid:
        picture = contact_sheet(scan, heatmaps, height=height or 512, columns=columns, alpha=alpha)
    else:
        picture = render_overlay(scan.pixels, scan.maxval, heatmaps[0], alpha=alpha, height=height)
    target = save_png(picture, output)
    if raw is not None:
        arrays = [h.array for h in heatmaps]
        Path(raw).parent.mkdir(parents=True, exist_ok=True)
        np.save(raw, arrays[0] if len(arrays) == 1 else np.stack(arrays))
    maps = [
        {"label": h.label, "method": h.method, "score": h.score, "peak": list(h.peak()) if h.has_evidence else None,
         "seconds": round(h.meta["seconds"], 3)}
        for h in heatmaps
    ]
    source = str(image) if isinstance(image, (str, Path)) else scan.meta.get("source")
    return {"image": source, "model": heatmaps[0].meta["model"], "output": str(target),
            "raw": str(raw) if raw is not None else None, "maps": maps}
