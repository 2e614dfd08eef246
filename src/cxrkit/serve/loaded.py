"""The models a server loads once at start-up, and the predictors built on them.

Loading a DenseNet takes seconds and hundreds of MB, so every model is created once
and shared: a :class:`~cxrkit.predict.Predictor` or :class:`~cxrkit.age.AgeEstimator`
per option set (calibrated or raw, orientation fix on or off) wraps the same network.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from torch import nn

from .. import __version__
from ..age import AgeEstimator
from ..models import ModelCard, card_of, create, load_model
from ..predict import Predictor
from ..preprocess import DEFAULT_ORIENTATION_MODEL, FilmSteps, OrientationFixer
from .config import ServeConfig
from .errors import NotLoaded

__all__ = ["LoadedModels", "model_summary"]

log = logging.getLogger(__name__)


def model_summary(card: ModelCard, role: str) -> dict[str, Any]:
    """What the page's model panel and ``GET /v1/models`` show: identity, labels, card metrics.

    ``version`` is the start of the weights' sha256, the one identifier that changes
    whenever the numbers can; training paths and configs stay out (they help nobody here).
    """
    training = card.training or {}
    split = training.get("split") or {}
    calibrated = bool(card.task == "multilabel" and card.thresholds)
    return {
        "role": role,
        "name": card.name,
        "version": (card.sha256 or "")[:12] or None,
        "sha256": card.sha256,
        "architecture": card.architecture,
        "task": card.task,
        "input_size": card.input_size,
        "labels": card.trained_labels,
        "thresholds": card.thresholds,
        "threshold_method": card.threshold_method,
        "calibrated": calibrated,
        # trained labels whose score is a raw probability: 0.5 is no validated operating point there
        "uncalibrated_labels": [label for label in card.trained_labels if label not in card.thresholds]
        if calibrated else [],
        "description": card.description,
        "intended_use": card.intended_use,
        # the card's verdict on held-out patients (ModelCard.evidence); the page shows it beside the scores
        "evidence": None if card.evidence is None else {**asdict(card.evidence), "sentence": card.evidence.sentence()},
        "license": card.license,
        "training_data": {
            "dataset": training.get("dataset"),
            "train": split.get("train"),
            "valid": split.get("valid"),
        },
        "metrics": card.metrics,
    }


class LoadedModels:
    """Classifiers by name (the first is the default), the age model and the orientation model."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.classifiers: dict[str, nn.Module] = {}
        for name in config.models:
            model = create(name)
            self.classifiers[model.card.name] = model
        self.default = next(iter(self.classifiers))
        self.age_model = create(config.age_model) if config.age_model else None
        self.orientation = (OrientationFixer(load_model(config.orientation_model, default=DEFAULT_ORIENTATION_MODEL,
                                                        device=config.device))
                            if config.orientation_model else None)
        self._predictors: dict[tuple[str, bool, bool], Predictor] = {}
        self._estimators: dict[tuple[bool, bool], AgeEstimator] = {}
        log.info("loaded %s", ", ".join([*self.classifiers, *(card_of(m).name for m in self._others())]))

    def _others(self) -> list[nn.Module]:
        return [m for m in (self.age_model, self.orientation.model if self.orientation is not None else None) if m is not None]

    def classifier(self, name: str | None) -> nn.Module:
        """The loaded classifier called ``name`` (default: the first one loaded)."""
        key = name or self.default
        if key not in self.classifiers:
            raise NotLoaded(f"model {key!r} is not loaded by this server; loaded: {', '.join(self.classifiers)} "
                            "(list it in `models` when starting the server)")
        return self.classifiers[key]

    def film_steps(self, fix_orientation: bool) -> FilmSteps:
        """The steps before the model: none, or the orientation fix of ``cxr predict --fix-orientation``."""
        if not fix_orientation:
            return FilmSteps()
        if self.orientation is None:
            raise NotLoaded("the orientation model is not loaded (the server was started with `orientation_model` None)")
        return FilmSteps(orientation=self.orientation)

    def predictor(self, name: str | None, *, calibrate: bool = True, fix_orientation: bool = False) -> Predictor:
        """A predictor over the shared network, as ``cxr predict [--raw] [--fix-orientation]`` builds it."""
        model = self.classifier(name)
        key = (card_of(model).name, calibrate, fix_orientation)
        if key not in self._predictors:
            # the backend `cxr predict` picks by default, so the API's rows stay byte for byte the command's
            predictor = Predictor(model, device=self.config.device, precision=self.config.precision,
                                  calibrate=calibrate, backend="auto", film=self.film_steps(fix_orientation))
            self._predictors[key] = predictor
        return self._predictors[key]

    def estimator(self, *, tta: bool, fix_orientation: bool = False) -> AgeEstimator:
        """An age estimator over the shared age network, as ``cxr age [--tta] [--fix-orientation]``."""
        if self.age_model is None:
            raise NotLoaded("no age model is loaded (the server was started with `age_model` None)")
        key = (tta, fix_orientation)
        if key not in self._estimators:
            estimator = AgeEstimator(self.age_model, tta=tta, device=self.config.device,
                                     precision=self.config.precision, film=self.film_steps(fix_orientation))
            self._estimators[key] = estimator
        return self._estimators[key]

    def summaries(self) -> dict[str, Any]:
        """Every loaded model's :func:`model_summary`, and which classifier answers by default."""
        models = [model_summary(card_of(m), "classifier") for m in self.classifiers.values()]
        if self.age_model is not None:
            models.append(model_summary(self.age_model.card, "age"))
        if self.orientation is not None:
            models.append(model_summary(card_of(self.orientation.model), "orientation"))
        return {"cxrkit_version": __version__, "default": self.default, "models": models}
