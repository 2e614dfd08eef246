"""Folder-to-folder conversion of radiographs (DICOM, TIFF, PNG, JPEG) to 8-bit PNG.

``cxr convert IN OUT`` writes one PNG per readable film, mirroring the input's folder
layout, and one manifest row per input file (``file, status, error, output, height,
width`` plus the orientation columns with ``--fix-orientation``). As in ``cxr predict``, a
file that cannot be read costs its own error row and nothing else, and ``--resume``
skips the files the manifest already lists. A PNG is written to a temporary name and
renamed into place, so a killed job never leaves a half-written image behind.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import CxrkitError
from .preprocess import FilmSteps, resize_shortest, to_uint8
from .io import read_image
from .predict import PredictionSummary
from .predict.run import error_reason, submit_ahead

__all__ = ["CONVERT_COLUMNS", "output_paths", "convert_film", "convert_files"]

log = logging.getLogger(__name__)

#: manifest columns after file, status, error (orientation columns follow when requested)
CONVERT_COLUMNS = ["output", "height", "width"]


def output_paths(files: Sequence[Path], roots: Sequence[Path], out_dir: Path) -> dict[str, Path]:
    """Where each input's PNG goes: its path below the input folder it was found in (a file
    given by name goes to the top), with the suffix replaced by ``.png``. Two inputs that
    would land on the same PNG get ``__2``, ``__3`` ... so nothing is overwritten."""
    folders = sorted((r for r in roots if r.is_dir()), key=lambda r: -len(r.parts))
    taken: set[Path] = set()
    out: dict[str, Path] = {}
    for file in files:
        root = next((r for r in folders if file.is_relative_to(r)), None)
        relative = file.relative_to(root) if root is not None else Path(file.name)
        target = out_dir / relative.with_suffix(".png") if relative.suffix else out_dir / (relative.name + ".png")
        candidate, n = target, 1
        while candidate in taken:
            n += 1
            candidate = target.with_name(f"{target.stem}__{n}.png")
        taken.add(candidate)
        out[str(file)] = candidate
    return out


def _write_png(pixels: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise CxrkitError(f"PNG encoding failed for {target.name}")
    partial.write_bytes(encoded.tobytes())
    os.replace(partial, target)


def convert_film(source: str | Path, target: str | Path, steps: FilmSteps) -> dict[str, Any]:
    """Read one film, apply ``steps`` (clean-up and/or orientation), write an 8-bit PNG.

    Without clean-up the film keeps its display levels (``0..maxval`` -> ``0..255``) and is
    only resized (shortest side ``steps.shortest``; ``None`` keeps the size).
    """
    image = read_image(source)
    pixels, maxval, info = steps.prepare(image)
    if not steps.clean:  # clean_film already levelled, resized and quantised
        pixels = to_uint8(resize_shortest(pixels.astype(np.float32) / np.float32(maxval), steps.shortest))
    _write_png(pixels, Path(target))
    return {"output": str(target), "height": int(pixels.shape[0]), "width": int(pixels.shape[1]), **info}


def convert_files(files: Iterable[Path], targets: dict[str, Path], steps: FilmSteps, *, workers: int = 1,
                  skip: set[str] | None = None, on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
                  summary: PredictionSummary | None = None) -> Iterator[dict[str, Any]]:
    """Convert files in parallel threads, yielding one manifest row per file in input order."""
    summary = summary if summary is not None else PredictionSummary()
    skip = skip or set()
    started = time.perf_counter()

    def settle(name: str, future: Future) -> dict[str, Any]:
        try:
            row = {"file": name, "status": "ok", "error": "", **future.result()}
            summary.ok += 1
        except Exception as exc:
            log.debug("cannot convert %s", name, exc_info=True)
            row = {"file": name, "status": "error", "error": error_reason(exc)}
            summary.failed += 1
            summary.errors.append((name, row["error"]))
        summary.seconds = time.perf_counter() - started
        if on_rows is not None:
            on_rows([row])
        return row

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cxr-convert") as pool:
        for name, future in submit_ahead(pool, files, lambda file: convert_film(file, targets[str(file)], steps),
                                         window=2 * workers + 1, skip=skip, summary=summary):
            yield settle(name, future)
    summary.seconds = time.perf_counter() - started
