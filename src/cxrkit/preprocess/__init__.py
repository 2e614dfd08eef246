"""Everything between a decoded film and the model's input, in one package.

- :mod:`.transforms`: the one pixel convention (``[0, maxval]`` -> ``[-1024, 1024]``),
  centre crop, resize, composable and keyed transforms, :func:`model_input`.
- :mod:`.film`: CXR-Age's film clean-up (trim, auto-level, shortest side, 8 bit) and
  :class:`FilmSteps`, the optional steps run on each film before a model sees it.
- :mod:`.orientation`: the eight orientations of a film and :class:`OrientationFixer`,
  which is handed an orientation model and puts films upright.
"""

from __future__ import annotations

from .film import FilmSteps, clean_film, resize_shortest, to_uint8, trim_box
from .orientation import (
    DEFAULT_ORIENTATION_MODEL,
    ORIENTATIONS,
    Orientation,
    OrientationFixer,
    apply_orientation,
    orientation_accuracy,
    undo_orientation,
)
from .transforms import (
    CenterCrop,
    Compose,
    KeyedTransform,
    ModelInput,
    Normalize,
    Resize,
    center_crop,
    crop_box,
    inference_transform,
    model_input,
    normalize,
    resize,
)

__all__ = [
    "CenterCrop",
    "Compose",
    "DEFAULT_ORIENTATION_MODEL",
    "FilmSteps",
    "KeyedTransform",
    "ModelInput",
    "Normalize",
    "ORIENTATIONS",
    "Orientation",
    "OrientationFixer",
    "Resize",
    "apply_orientation",
    "center_crop",
    "clean_film",
    "crop_box",
    "inference_transform",
    "model_input",
    "normalize",
    "orientation_accuracy",
    "resize",
    "resize_shortest",
    "to_uint8",
    "trim_box",
    "undo_orientation",
]
