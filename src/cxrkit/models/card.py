"""Model cards: the typed metadata every weight file carries (docs/design.md, contract 4).

A weight file is ``NAME.safetensors`` (tensors only, nothing executable) plus
``NAME.json`` beside it, this card. The card records what a user needs to trust and
reproduce a prediction: architecture, labels in head order, the input contract,
operating thresholds keyed by label *name*, provenance, training data, metrics and
how they were measured, and the sha256 of the tensor file, checked on every load.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_text_atomic
from ..errors import WeightsError
from .evidence import Evidence, assess

if TYPE_CHECKING:
    from ..preprocess import ModelInput

__all__ = ["ModelCard", "InputSpec", "NORMALIZATION", "CARD_VERSION"]

CARD_VERSION = 1

#: The one pixel convention of every cxrkit model (TorchXRayVision's).
NORMALIZATION: dict[str, Any] = {
    "formula": "(2 * x / maxval - 1) * 1024",
    "range": [-1024.0, 1024.0],
    "channels": 1,
    "crop": "center-square",
    "resize": "area when shrinking, bilinear when enlarging",
}

#: ``normalization["crop"]`` values and whether they centre-crop: the square TorchXRayVision cuts, or the whole film
_CROPS = {"center-square": True, "none": False}

_TASKS = ("multilabel", "multiclass", "regression", "reconstruction")
#: tasks whose output is not a labelled head (an autoencoder's reconstruction): their card lists no labels
_UNLABELLED_TASKS = ("reconstruction",)


@dataclass(frozen=True)
class InputSpec:
    """A card's input contract, typed (:attr:`ModelCard.preprocessing`): a ``size`` px square,
    centre-cropped first when ``crop``, ``channels`` channels of values in ``value_range``.

    The JSON keeps the descriptive ``input_size`` and ``normalization`` keys every card has
    always had (readable without cxrkit); this is what they mean, checked by
    :meth:`ModelCard.validate` and built into the model input by :meth:`ModelCard.transforms`.
    """

    size: int
    crop: bool = True
    channels: int = 1
    value_range: tuple[float, float] = (-1024.0, 1024.0)

    @classmethod
    def parse(cls, input_size: Any, normalization: Any) -> tuple[InputSpec | None, list[str]]:
        """The spec the two card fields describe, or None and what is wrong with them."""
        problems = []
        if not isinstance(input_size, int) or isinstance(input_size, bool) or input_size <= 0:
            problems.append(f"input_size must be a positive int, got {input_size!r}")
        if not isinstance(normalization, dict):
            return None, [*problems, f"normalization must be a JSON object, got {type(normalization).__name__}"]
        given = {**NORMALIZATION, **normalization}
        unknown = sorted(set(normalization) - set(NORMALIZATION))
        if unknown:
            problems.append(f"normalization has unknown keys {unknown}")
        for key in ("formula", "resize"):  # the one recipe model_input implements
            if given[key] != NORMALIZATION[key]:
                problems.append(f"normalization {key} {given[key]!r} is not cxrkit's {NORMALIZATION[key]!r}")
        value_range = given["range"]
        if not (isinstance(value_range, (list, tuple)) and len(value_range) == 2
                and [v for v in value_range if isinstance(v, (int, float))] == NORMALIZATION["range"]):
            problems.append(f"normalization range must be {NORMALIZATION['range']}, got {given['range']!r}")
        if given["channels"] != 1:
            problems.append(f"normalization channels must be 1 (grey films), got {given['channels']!r}")
        if not isinstance(given["crop"], str) or given["crop"] not in _CROPS:
            problems.append(f"normalization crop must be one of {sorted(_CROPS)}, got {given['crop']!r}")
        if problems:
            return None, problems
        low, high = value_range
        return cls(input_size, _CROPS[given["crop"]], 1, (float(low), float(high))), []

    def transform(self) -> ModelInput:
        """The callable that makes this input from decoded pixels: ``(pixels, maxval) -> (1, size, size)`` float32."""
        from ..preprocess import ModelInput  # here: the preprocessing package imports PyTorch; reading cards must not

        return ModelInput(self.size, self.crop)


@dataclass
class ModelCard:
    """Metadata of one set of weights. ``labels`` is in head order; ``None`` marks an untrained output."""

    name: str
    architecture: str
    labels: list[str | None]
    input_size: int
    task: str = "multilabel"
    thresholds: dict[str, float] = field(default_factory=dict)
    threshold_method: str | None = None
    description: str = ""
    intended_use: str = "Research only. Not a medical device; not for clinical decisions."
    license: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    normalization: dict[str, Any] = field(default_factory=lambda: dict(NORMALIZATION))
    weights_file: str | None = None
    sha256: str | None = None
    card_version: int = CARD_VERSION

    @property
    def trained_labels(self) -> list[str]:
        """Labels the head actually predicts, in head order."""
        return [label for label in self.labels if label]

    @property
    def uncalibrated_labels(self) -> list[str]:
        """Trained labels without an operating threshold: calibrated output gives their raw probability.

        Empty for a model with no thresholds at all (nothing is calibrated then, and
        ``cxr predict`` says so) and for non-multilabel tasks.
        """
        if self.task != "multilabel" or not self.thresholds:
            return []
        return [label for label in self.trained_labels if label not in self.thresholds]

    @property
    def preprocessing(self) -> InputSpec:
        """The typed input contract of ``input_size`` and ``normalization``; :class:`WeightsError` if they are invalid."""
        spec, problems = InputSpec.parse(self.input_size, self.normalization)
        if spec is None:
            raise WeightsError(f"model card {self.name!r} is invalid: " + "; ".join(problems))
        return spec

    def transforms(self) -> ModelInput:
        """The model's input transform, ``(pixels, maxval) -> (1, S, S)`` float32, as this card prescribes:
        what every runner, the explainer and training's validation build a film's input with."""
        return self.preprocessing.transform()

    @property
    def evidence(self) -> Evidence | None:
        """Whether the model beats a no-skill answer on held-out patients, with the numbers
        (:func:`cxrkit.models.evidence.assess`); None where the card records no such metrics."""
        return assess(self)

    def validate(self) -> ModelCard:
        """Check the card is self-consistent; raise :class:`WeightsError` naming the problem."""
        problems = []
        if not self.name:
            problems.append("empty name")
        if self.task not in _TASKS:
            problems.append(f"task {self.task!r} is not one of {_TASKS}")
        if self.task in _UNLABELLED_TASKS:
            if self.labels or self.thresholds:
                problems.append(f"a {self.task} model has no labels or thresholds")
        elif not self.labels or not any(self.labels):
            problems.append("no trained labels")
        named = [label for label in self.labels if label]
        if len(set(named)) != len(named):
            problems.append("duplicate labels")
        problems += InputSpec.parse(self.input_size, self.normalization)[1]
        for label, value in self.thresholds.items():
            if label not in named:
                problems.append(f"threshold for {label!r}, which is not a trained label")
            elif not (isinstance(value, (int, float)) and 0.0 < value < 1.0 and math.isfinite(value)):
                problems.append(f"threshold for {label!r} must lie in (0, 1), got {value!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            problems.append("sha256 is not a 64-digit lowercase hex string")
        if problems:
            raise WeightsError(f"model card {self.name!r} is invalid: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write the card as indented JSON (diff-friendly, readable without cxrkit)."""
        path = Path(path)
        self.validate()
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")  # never half a card
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> ModelCard:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise WeightsError(f"{source}: unknown model card fields {unknown}")
        try:
            card = cls(**data)
        except TypeError as exc:
            raise WeightsError(f"{source}: incomplete model card ({exc})") from None
        if card.card_version > CARD_VERSION:
            raise WeightsError(f"{source}: card version {card.card_version} is newer than this cxrkit understands; upgrade cxrkit")
        return card.validate()

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WeightsError(f"model card not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WeightsError(f"{path}: not a valid JSON model card ({exc})") from None
        if not isinstance(data, dict):
            raise WeightsError(f"{path}: a model card must be a JSON object")
        return cls.from_dict(data, source=str(path))
