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

__all__ = ["AgeEstimator", "AgeEstimate", "AgeTable", "tta_views", "DEFAULT_AGE_MODEL", "TTA_BLEND", "TTA_VIEWS",
           "TTA_ZOOM"]
