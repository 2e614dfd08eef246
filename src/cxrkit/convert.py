"""Folder-to-folder conversion of radiographs (DICOM, TIFF, PNG, JPEG) to 8-bit PNG.

A conversion writes one PNG per readable film, mirroring the input's folder layout, and
one manifest row per input file (``file, status, error, output, height, width`` plus the
orientation columns when the orientation fix is on). It runs on the batch engine
(:class:`Converter` is a :class:`~cxrkit.predict.FileTask`), so, as in prediction, a file
that cannot be read costs its own error row and nothing else, and a resumed run skips the
files the manifest already lists. A PNG is written to a temporary name and renamed into
place, so a killed job never leaves a half-written image behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .atomic import remove_temporaries, write_bytes_atomic
from .errors import RunFailed
from .io import read_image
from .preprocess import FilmSteps, resize_shortest, to_uint8

__all__ = ["CONVERT_COLUMNS", "Converter", "output_paths", "convert_film"]

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
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise RunFailed(f"PNG encoding failed for {target.name}")
    write_bytes_atomic(target, encoded.tobytes(), durable=False)


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


class Converter:
    """Conversion as a :class:`~cxrkit.predict.FileTask`: the batch engine (read-ahead threads,
    ordered rows, error rows, resume) drives it through :func:`cxrkit.predict.run_files`.

    ``targets`` maps each input file (as a string) to its PNG (see :func:`output_paths`).
    """

    def __init__(self, targets: dict[str, Path], steps: FilmSteps):
        self.targets = targets
        self.steps = steps
        for folder in {target.parent for target in targets.values()}:  # half-written PNGs of a killed run
            if folder.is_dir():
                remove_temporaries(folder, "*.png")
        #: manifest columns after file, status, error
        self.columns = CONVERT_COLUMNS + steps.columns

    def __call__(self, path: Path) -> dict[str, Any]:
        return convert_film(path, self.targets[str(path)], self.steps)
