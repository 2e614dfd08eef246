"""Explanations: where a model looks, for any registry model, in the radiograph's own geometry.

>>> from cxrkit import explain
>>> heat = explain.explain("densenet121.nih-demo", "chest.png", label="top", method="gradcam")
>>> explain.save_overlay(heat.film, heat, "chest.gradcam.png")
>>> explain.explain_to_files("densenet121.nih-demo", "chest.png", labels=["top", "Effusion"],
...                          methods=["gradcam", "lime"], grid=True)   # what `cxr explain` does

Methods: ``cam``, ``gradcam``, ``gradcam++``, ``saliency``, ``ig``, ``occlusion``,
``lime``. Trust checks: :func:`randomisation_test` (Adebayo et al. 2018) and
:func:`pointing_game` (Zhang et al. 2016) against bounding boxes.
"""

from __future__ import annotations

from .api import (
    METHODS,
    explain,
    explain_grid,
    load_image,
    prepare_film,
    resolve_label,
)
from .batch import HeatmapWriter, parse_label_spec
from .errors import ExplainError, UnknownLabel, UnknownMethod
from .heatmap import Heatmap, to_input_geometry, to_original_geometry
from .overlay import contact_sheet, render_overlay, save_overlay, save_png
from .pointing import PointingResult, pointing_game
from .render import default_output, explain_to_files
from .rows import Heatmaps
from .sanity import (
    SanityResult,
    randomisation_test,
    randomise_weights,
    rank_correlation,
)

__all__ = [
    "METHODS",
    "ExplainError",
    "Heatmap",
    "Heatmaps",
    "HeatmapWriter",
    "PointingResult",
    "SanityResult",
    "UnknownLabel",
    "UnknownMethod",
    "contact_sheet",
    "default_output",
    "explain",
    "explain_grid",
    "explain_to_files",
    "load_image",
    "parse_label_spec",
    "pointing_game",
    "prepare_film",
    "randomisation_test",
    "randomise_weights",
    "rank_correlation",
    "render_overlay",
    "resolve_label",
    "save_overlay",
    "save_png",
    "to_input_geometry",
    "to_original_geometry",
]
