"""Chest X-ray age (after CXR-Age): estimate age from one film, compare it with the known age.

>>> from cxrkit.age import AgeEstimator
>>> estimator = AgeEstimator(tta=True)          # bundled densenet121.nih-age
>>> estimator.estimate("examples/00001036_000.png")
"""

from .ages import AgeTable
from .estimator import (
           DEFAULT_AGE_MODEL,
           TTA_BLEND,
           TTA_VIEWS,
           TTA_ZOOM,
           AgeEstimate,
           AgeEstimator,
           tta_views,
)
from .to_file import AGE_COLUMNS, SALIENCY_METHODS, age_to_file

__all__ = ["AGE_COLUMNS", "AgeEstimator", "AgeEstimate", "AgeTable", "DEFAULT_AGE_MODEL", "SALIENCY_METHODS", "TTA_BLEND",
           "TTA_VIEWS", "TTA_ZOOM", "age_to_file", "tta_views"]
