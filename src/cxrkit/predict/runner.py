"""The two shapes of work the batch engine drives: a model :class:`Runner` and a per-file :class:`FileTask`.

A runner is what turns films into score columns in batches: ``Predictor`` (pathologies),
``AgeEstimator`` (CXR-Age), the shortcut probe's feature extractor, an embedder. The
engine reads every film once, in threads, hands it to ``prepare``, stacks the prepared
inputs and calls ``predict_batch``; so a new model kind writes those members (and
``film``, the steps ``prepare`` applies first, or ``None``) and gets read-ahead, error rows, ordered resumable output and the server for free.

A file task is work with nothing to batch (``cxr convert`` writes one PNG per film): the
engine calls it once per file in its threads, with the same ordering, error rows and
resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..io import XrayImage
from ..preprocess import FilmSteps

__all__ = ["Runner", "FileTask"]


@runtime_checkable
class Runner(Protocol):
    """A model the engine can drive in batches.

    ``columns`` names the values ``predict_batch`` returns for each film, in order.
    ``film`` is the :class:`~cxrkit.preprocess.FilmSteps` that ``prepare`` applies first
    (``None`` for a runner that applies none); their columns (orientation) lead the
    runner's own in the output, so the engine reads them from here rather than guessing.
    ``prepare(image)`` turns one decoded film into the model input and the extra row
    fields it carries (e.g. ``orientation``, ``chronological_age``); it runs in reader
    threads, so it must not touch shared mutable state. ``predict_batch(inputs)`` takes
    the prepared inputs stacked on a new first axis and returns an array of shape
    ``(N, len(columns))``; it runs on the engine's thread, one batch at a time. Either may
    raise: a ``prepare`` error costs its file an error row, a ``predict_batch`` error
    costs the batch's files theirs, and the run goes on.
    """

    columns: list[str]

    @property
    def film(self) -> FilmSteps | None: ...

    def prepare(self, image: XrayImage) -> tuple[np.ndarray, dict[str, Any]]: ...

    def predict_batch(self, inputs: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class FileTask(Protocol):
    """Work done once per file with nothing to batch: ``task(path)`` returns the row's fields
    (keys among ``columns``) or raises, which costs that file an error row."""

    columns: list[str]

    def __call__(self, path: Path) -> dict[str, Any]: ...
