"""One call for a whole age job: films in, one file of chest X-ray ages out, with the known age beside them.

``cxr age`` is a parser over :func:`age_to_file`. The extras are the objects
:func:`cxrkit.predict.predict_to_file` takes: saliency maps
(``cxrkit.explain.Heatmaps(folder, "saliency", "all", column="saliency")``) and DICOM
reports (``cxrkit.dicom.Reports(folder)``), seen here only as row steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import InvalidArgument
from ..predict import OutputSpec, Progress, RunSummary
from ..predict.scan import scan_inputs
from ..predict.to_file import RowStep, output_to, run_with_steps
from .ages import AgeTable
from .estimator import AgeEstimator

__all__ = ["AGE_COLUMNS", "SALIENCY_METHODS", "age_to_file"]

#: columns an age run adds after the estimate: the known age, and the estimate minus it
AGE_COLUMNS = ["chronological_age", "age_gap"]
#: explanation methods that suit an age (regression) model; saliency is CXR-Age's input gradient
SALIENCY_METHODS = ("saliency", "gradcam", "gradcam++", "ig")


def _gaps(known: AgeTable | None) -> Callable[[list[dict[str, Any]]], None]:
    def fill(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if known is not None and (listed := known.get(row["file"])) is not None:
                row["chronological_age"] = listed
            true_age = row.get("chronological_age")
            row["age_gap"] = row["cxr_age"] - true_age if row["status"] == "ok" and true_age is not None else None

    return fill


def age_to_file(
    paths: Iterable[str | os.PathLike[str]],
    model: str | AgeEstimator,
    output: OutputSpec | str | os.PathLike[str] | None,
    *,
    known: AgeTable | None = None,
    saliency: RowStep | None = None,
    reports: RowStep | None = None,
    batch_size: int = 8,
    workers: int = 1,
    progress: Progress | None = None,
) -> RunSummary:
    """Estimate the chest X-ray age of every image under ``paths`` into ``output``; one row per file.

    ``model`` is an :class:`AgeEstimator` (with its TTA, device, precision) or an age model
    name/file. ``output`` as in :func:`cxrkit.predict.predict_to_file`. Columns: file,
    status, error, ``cxr_age`` (and ``cxr_age_sd`` with TTA), ``chronological_age`` (from
    ``known``, else the DICOM header) and ``age_gap`` (estimate minus it), then the extras'.
    Film steps belong to the estimator (``AgeEstimator(name, film=FilmSteps(...))``); ``saliency``
    draws maps on the film as found, so it cannot go with steps that change the film.
    """
    estimator = model if isinstance(model, AgeEstimator) else AgeEstimator(model)
    film = estimator.film
    if saliency is not None and film is not None and (film.clean or film.orientation is not None):
        raise InvalidArgument("`saliency` with `film` steps is not supported: the maps would be drawn on the film as "
                              "found, not as scored; convert the films first and estimate on the converted ones")
    files = scan_inputs(paths)
    steps = [step.attach(estimator, files) for step in (saliency, reports) if step is not None]
    return run_with_steps(files, estimator, output_to(output), steps, first=_gaps(known), extra_columns=AGE_COLUMNS,
                          batch_size=batch_size, workers=workers, progress=progress)
