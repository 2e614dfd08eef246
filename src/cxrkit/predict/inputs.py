"""Model inputs of a handful of films, read in one thread, for checks rather than batch jobs.

Export verification and benchmarks need a few real films as a ready batch; batch jobs run on
the engine instead, with a row per failure. Its own module so that the exporter (which the
backends load ONNX files through) does not import the predictor built on those backends.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import CxrkitError, InvalidInput
from ..io import read_image
from ..models import ModelCard

__all__ = ["readable_inputs"]

log = logging.getLogger(__name__)


def readable_inputs(files: Sequence[str | os.PathLike[str]], card: ModelCard) -> np.ndarray:
    """Model inputs ``(N, 1, S, S)`` of the films that can be read, as ``card`` prescribes, in order,
    one thread; an unreadable film is left out (and logged). For checks over a handful of films
    (export verification, benchmarks), not for batch jobs: those run on the engine, with error rows."""
    transform = card.transforms()
    inputs = []
    for path in files:
        try:
            image = read_image(path)
        except CxrkitError as exc:
            log.info("leaving out %s: %s", Path(path).name, exc)
            continue
        inputs.append(transform(image.pixels, image.maxval))
    if not inputs:
        raise InvalidInput("none of the films could be read; give real radiographs (PNG, JPEG or DICOM)")
    return np.stack(inputs).astype(np.float32, copy=False)
