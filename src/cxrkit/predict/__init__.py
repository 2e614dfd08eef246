"""Batch prediction: from files on disk to a CSV of calibrated scores, streaming and resumable."""

from __future__ import annotations

from .predictor import PRECISIONS, Predictor
from .run import PredictionSummary, predict_files
from .scan import iter_image_files
from .writer import FORMATS, PredictionWriter

__all__ = ["FORMATS", "PRECISIONS", "PredictionSummary", "PredictionWriter", "Predictor", "iter_image_files", "predict_files"]
