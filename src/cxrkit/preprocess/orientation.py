"""Film orientation: the eight ways a radiograph can lie (four rotations, each mirrored or not),
and a small classifier that finds which one a film is in so it can be put upright.

Scanned films and some exported DICOMs arrive rotated by 90 or 180 degrees or mirrored;
a classifier trained on upright images then sees something it never learned. CXR-Age met
this in PLCO (scanned films) and trained a CNN on synthetically rotated NIH images; cxrkit
does the same with ``cxr train`` (``data.target: orientation``, see configs/orientation-nih.yaml)
and ships the result as ``resnet18.nih-orientation``.

Orientation ``i`` of :data:`ORIENTATIONS` means: the upright film was mirrored left-right
(if the name starts with ``flip``) and then turned clockwise by the stated angle.
:func:`apply_orientation` makes that film from an upright one and :func:`undo_orientation`
puts it back; both are exact (``numpy.rot90``/``flip``, no interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from ..errors import InvalidArgument

__all__ = ["ORIENTATIONS", "DEFAULT_ORIENTATION_MODEL", "apply_orientation", "undo_orientation",
           "orientation_accuracy", "Orientation", "OrientationFixer"]

#: class names of the orientation model, in head order; index 0 is upright
ORIENTATIONS = ("upright", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270")

DEFAULT_ORIENTATION_MODEL = "resnet18.nih-orientation"

#: an image comes back as the kind it went in: an array or a tensor
_Image = TypeVar("_Image", np.ndarray, torch.Tensor)


def _parts(index: int) -> tuple[int, bool]:
    if not 0 <= index < len(ORIENTATIONS):
        raise InvalidArgument(f"orientation index must be 0..{len(ORIENTATIONS) - 1}, got {index}")
    return index % 4, index >= 4


def apply_orientation(image: _Image, index: int) -> _Image:
    """The upright ``image`` (``..., H, W``) as it looks in orientation ``index``."""
    quarter_turns, mirrored = _parts(index)
    if isinstance(image, torch.Tensor):
        flipped = torch.flip(image, dims=(-1,)) if mirrored else image
        return torch.rot90(flipped, k=-quarter_turns, dims=(-2, -1))
    out = np.flip(image, axis=-1) if mirrored else image
    return np.ascontiguousarray(np.rot90(out, k=-quarter_turns, axes=(-2, -1)))


def undo_orientation(image: _Image, index: int) -> _Image:
    """Inverse of :func:`apply_orientation`: a film found in orientation ``index``, put upright."""
    quarter_turns, mirrored = _parts(index)
    if isinstance(image, torch.Tensor):
        turned = torch.rot90(image, k=quarter_turns, dims=(-2, -1))
        return torch.flip(turned, dims=(-1,)) if mirrored else turned
    out = np.rot90(image, k=quarter_turns, axes=(-2, -1))
    return np.ascontiguousarray(np.flip(out, axis=-1) if mirrored else out)


def orientation_accuracy(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy of orientation predictions: all eight classes, the rotation alone (what
    ``OrientationFixer`` fixes by default), the mirror alone, and how often an upright film
    would be turned or mirrored by mistake."""
    truth, predicted = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    upright = truth == 0
    return {
        "accuracy_8_orientations": float((truth == predicted).mean()),
        "accuracy_rotation": float((truth % 4 == predicted % 4).mean()),
        "accuracy_mirror": float(((truth >= 4) == (predicted >= 4)).mean()),
        "upright_films_rotated_by_mistake": float((predicted[upright] % 4 != 0).mean()) if upright.any() else float("nan"),
        "upright_films_mirrored_by_mistake": float((predicted[upright] >= 4).mean()) if upright.any() else float("nan"),
    }


@dataclass(frozen=True)
class Orientation:
    """What the classifier found: the orientation, its probability, and whether a fix was applied."""

    name: str
    index: int
    probability: float
    corrected: bool

    #: the columns :meth:`row` fills in a prediction/conversion row
    COLUMNS = ("orientation", "orientation_p", "orientation_fixed")

    def row(self) -> dict[str, object]:
        return {"orientation": self.name, "orientation_p": round(self.probability, 4),
                "orientation_fixed": "yes" if self.corrected else "no"}


class OrientationFixer:
    """Finds a film's orientation with an orientation model and puts the film upright.

    A film is only turned when the model's probability for a non-upright orientation is
    at least ``min_probability`` (default 0.5): an unsure model leaves the film alone
    rather than turning an upright film on its side. By default only rotations are fixed
    (the mirrored classes' probabilities are folded away): the bundled model finds the
    rotation of every held-out validation film but tells mirrored from upright only 96 %
    of the time, so undoing mirrors would wrongly flip about 5 % of upright films.
    ``mirror=True`` undoes mirrors too.

    ``model`` is a loaded orientation model (``cxrkit.models.load_model(name)``): film
    steps sit left of ``models`` in the layers, so the fixer is handed its network.
    """

    def __init__(self, model: nn.Module, *, min_probability: float = 0.5, mirror: bool = False):
        card = getattr(model, "card", None)
        if card is None or tuple(card.labels) != ORIENTATIONS:
            got = None if card is None else list(card.labels)
            raise InvalidArgument(f"not an orientation model: its labels must be {list(ORIENTATIONS)}, got {got}")
        self.model = model.eval()
        self.input_size = card.input_size
        self.transform = card.transforms()  # the card's input recipe (decoded pixels -> model input)
        self.device = next((t.device for t in model.parameters()), torch.device("cpu"))
        self.min_probability = float(min_probability)
        self.mirror = mirror

    @torch.inference_mode()
    def probabilities(self, pixels: np.ndarray, maxval: float) -> np.ndarray:
        """Probability of each of :data:`ORIENTATIONS` for one decoded film."""
        x = torch.from_numpy(self.transform(pixels, maxval))[None].to(self.device)
        probs = torch.softmax(self.model(x).float(), dim=1)[0].cpu().numpy()
        if not self.mirror:
            probs[4:] = 0.0
            probs /= probs.sum()
        return probs

    def detect(self, pixels: np.ndarray, maxval: float) -> Orientation:
        """The most likely orientation, and whether :meth:`fix` would turn the film."""
        probs = self.probabilities(pixels, maxval)
        index = int(np.argmax(probs))
        confident = index != 0 and float(probs[index]) >= self.min_probability
        return Orientation(ORIENTATIONS[index], index, float(probs[index]), confident)

    def fix(self, pixels: np.ndarray, maxval: float) -> tuple[np.ndarray, Orientation]:
        """The film put upright (unchanged when upright or unsure), and what was found."""
        found = self.detect(pixels, maxval)
        if not found.corrected:
            return pixels, found
        return undo_orientation(pixels, found.index), found
