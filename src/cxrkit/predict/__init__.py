"""Batch prediction: from files on disk to a CSV of calibrated scores, streaming and resumable.

Layers, bottom up: a backend (:mod:`.backends`) runs the forward pass; a runner
(:class:`Runner`: :class:`Predictor`, :class:`cxrkit.age.AgeEstimator`, ...) turns films
into score columns; the engine (:func:`predict_files`, :func:`map_files`) reads ahead and
batches; :func:`run_files` adds scanning and the resumable writer.
"""

from __future__ import annotations

from ..models.precision import PRECISIONS
from .backends import BACKENDS, Backend, choose_backend, make_backend
from .engine import RunSummary, error_reason, map_files, predict_files
from .job import OutputSpec, Progress, output_columns, run_files
from .model_runner import film_steps
from .predictor import Predictor
from .runner import FileTask, Runner
from .scan import iter_image_files, scan_inputs
from .to_file import RowColumns, RowStep, RunnerWrap, output_to, predict_to_file, preparing_device, ray_engine
from .writer import FORMATS, OutputExists, RowWriter

__all__ = ["BACKENDS", "FORMATS", "PRECISIONS", "Backend", "choose_backend", "error_reason", "FileTask", "film_steps",
           "iter_image_files", "make_backend", "map_files", "output_columns", "output_to", "OutputExists",
           "OutputSpec", "predict_files", "predict_to_file", "Predictor", "preparing_device", "Progress",
           "ray_engine", "RowColumns", "RowStep", "RowWriter", "run_files", "Runner", "RunnerWrap", "RunSummary",
           "scan_inputs"]
