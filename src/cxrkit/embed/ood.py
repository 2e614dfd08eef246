"""Out-of-distribution flag: how far a film's features lie from the films a model was trained on.

A classifier scores whatever it is given: a hip radiograph, a CT scout or a photo of a
screen gets 18 confident-looking numbers. The detector here flags such inputs with the
deep nearest-neighbour score (Sun et al., ICML 2022): features are L2-normalised and the
score is the cosine distance to the ``k``-th nearest *reference* film (films from the
model's training set). It needs no training, no labels and no assumption about what the
outliers look like, and it uses the model's own features, so it asks "has this model
seen films like this one?" rather than "is this a chest film?" in general.

The threshold is a quantile of the scores of *validation* films (in-distribution films
that are not references): ``quantile=0.99`` flags about 1 % of films like the training
ones. The detector is stored as a sidecar ``NAME.ood.safetensors`` beside the model's
card (tensors only: the reference vectors in float16; settings and validation numbers in
its metadata), and is tied to the exact weights by their sha256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import InvalidArgument, InvalidInput, MissingFile, WeightsError
from ..io import XrayImage
from ..models import ModelCard
from ..models.store import model_dirs
from ..predict.contract import classifier_of
from ..predict.predictor import Predictor
from .index import read_embeddings, unit_vectors
from .runner import Embedder

__all__ = ["Ood", "OodDetector", "OodPredictor", "OOD_COLUMNS", "detector_path", "find_detector"]

#: columns :class:`OodPredictor` adds: the distance, and 1.0/0.0 for above/below the threshold
OOD_COLUMNS = ["ood_score", "ood"]


@dataclass
class OodDetector:
    """k-th nearest-neighbour cosine distance to reference films, with a validation threshold."""

    reference: np.ndarray
    threshold: float
    k: int = 5
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reference = unit_vectors(self.reference)
        if not 1 <= self.k <= len(self.reference):
            raise InvalidArgument(f"k must lie between 1 and the {len(self.reference)} reference films, got {self.k}")

    @classmethod
    def fit(cls, reference: np.ndarray, validation: np.ndarray, *, k: int = 5, quantile: float = 0.99,
            max_reference: int = 5000, info: dict[str, Any] | None = None) -> OodDetector:
        """References from the training films; threshold at ``quantile`` of the validation films' scores.

        More than ``max_reference`` training films are subsampled (fixed seed): the sidecar stays
        small (5,000 x 1,024 float16 = 10 MB) and a score stays one small matrix product.
        """
        if len(reference) > max_reference:
            reference = reference[np.sort(np.random.default_rng(0).choice(len(reference), max_reference, replace=False))]
        if not 0.5 <= quantile < 1.0:
            raise InvalidArgument(f"quantile must lie in [0.5, 1), got {quantile}")
        if len(validation) < 20:
            raise InvalidInput(f"{len(validation)} validation films are too few to place a threshold; use at least 20")
        detector = cls(reference, threshold=float("inf"), k=k)
        scores = detector.score(validation)
        detector.threshold = float(np.quantile(scores, quantile))
        detector.info = {**(info or {}), "method": "deep k-NN cosine distance (Sun et al. 2022)", "quantile": quantile,
                         "n_reference": len(reference), "n_validation": len(validation),
                         "validation_flagged": float(np.mean(scores > detector.threshold))}
        return detector

    @classmethod
    def fit_tables(cls, train: str | Path, validation: str | Path, *, k: int = 5, quantile: float = 0.99) -> OodDetector:
        """:meth:`fit` on two embedding tables (``cxr embed``): the model's training films and other
        in-distribution validation films, embedded by one model's ``features`` layer in one view.

        The detector remembers which weights and view made them, so scoring embeds a film the same
        way; tables from different weights, layers or views are refused rather than compared.
        """
        _, reference, meta = read_embeddings(train)
        _, held_out, held_meta = read_embeddings(validation)
        same = ("model", "weights_sha256", "layer")
        if meta.get("layer") != "features" or any(meta.get(key) != held_meta.get(key) for key in same):
            raise InvalidInput(f"the training and validation tables must be embeddings of one model's features "
                               f"layer; got {[meta.get(key) for key in same]} and {[held_meta.get(key) for key in same]}")
        trims = (float(meta.get("trim") or 0.0), float(held_meta.get("trim") or 0.0))  # no trim stored: whole films
        if trims[0] != trims[1]:
            raise InvalidInput(f"the training and validation tables must be embedded with one view; their trims "
                               f"are {trims[0]} and {trims[1]}")
        info = {key: meta.get(key) for key in ("model", "architecture", "weights_sha256", "precision")}
        return cls.fit(reference, held_out, k=k, quantile=quantile, info={**info, "trim": trims[0]})

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine distance of each vector to its ``k``-th nearest reference (0 = identical direction)."""
        similarity = unit_vectors(np.atleast_2d(vectors)) @ self.reference.T
        kth = np.partition(similarity, len(self.reference) - self.k, axis=1)[:, len(self.reference) - self.k]
        return (1.0 - kth).astype(np.float32)

    def flag(self, vectors: np.ndarray) -> np.ndarray:
        return self.score(vectors) > self.threshold

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        meta = {"threshold": repr(self.threshold), "k": str(self.k), "info": json.dumps(self.info, sort_keys=True)}
        with atomic_path(path) as temp:
            save_file({"reference": self.reference.astype(np.float16)}, str(temp), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> OodDetector:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = handle.metadata() or {}
                reference = handle.get_tensor("reference").astype(np.float32)
            return cls(reference, float(meta["threshold"]), int(meta["k"]), json.loads(meta.get("info", "{}")))
        except (OSError, KeyError, ValueError) as exc:
            raise WeightsError(f"{path}: not an out-of-distribution detector file ({exc})") from None

    def fits(self, card: ModelCard) -> bool:
        """Whether the reference vectors are features of exactly these weights (same sha256, or same name)."""
        fitted = self.info.get("weights_sha256")
        return fitted == card.sha256 if fitted and card.sha256 else self.info.get("model") == card.name


def detector_path(model_name: str, folder: str | Path) -> Path:
    """Where the detector used with model ``model_name`` lives in ``folder`` (beside its card)."""
    return Path(folder) / f"{model_name}.ood.safetensors"


def find_detector(card: ModelCard, near: str | Path | None = None) -> OodDetector | None:
    """The detector used with ``card``'s model: beside ``near`` (a model file), else in the model folders."""
    folders = ([Path(near).expanduser().parent] if near is not None and Path(near).suffix else []) + model_dirs()
    for folder in folders:
        if detector_path(card.name, folder).is_file():
            return OodDetector.load(detector_path(card.name, folder))
    return None


class OodPredictor:
    """A :class:`~cxrkit.predict.Predictor` whose rows also carry ``ood_score`` and ``ood``.

    When the detector was fitted on the predicting model's own features, the film goes
    through the network once: its pooled features feed both the detector and the
    classifier head, so the flag costs a matrix product. A detector may also be fitted on
    another model's features (a model whose features separate films from non-films
    better, docs/representations.md); that model then runs as a second, feature-only pass.
    """

    def __init__(self, predictor: Predictor, detector: OodDetector):
        self.predictor, self.detector = predictor, detector
        # the view the detector's reference films were embedded with: the whole film (shared with the
        # classifier) unless the tables were trimmed (cxr embed's retrieval view), then a second pass
        trim = float(detector.info.get("trim") or 0.0)
        own = detector.fits(predictor.card)
        self.shared = own and trim == 0
        features_of = predictor.model if own else detector.info.get("model")
        self.embedder = Embedder(features_of, layer="features", device=str(predictor.device),
                                 precision=predictor.precision, trim=trim)
        if not (own or detector.fits(self.embedder.card)):
            raise WeightsError(f"the out-of-distribution detector was fitted on other weights than "
                              f"{self.embedder.card.name}'s; fit it again")
        if len(detector.reference[0]) != self.embedder.dim:
            raise WeightsError(f"the detector holds {len(detector.reference[0])}-d vectors, {self.embedder.card.name} "
                              f"gives {self.embedder.dim}-d features; fit it again")
        self.columns = predictor.columns + OOD_COLUMNS
        self.card, self.precision = predictor.card, predictor.precision

    @property
    def film(self):
        return self.predictor.film

    def prepare(self, image: XrayImage) -> tuple[np.ndarray, dict[str, Any]]:
        """The predictor's input; with a separate feature model, both models' inputs flattened into one
        array (the engine stacks one array per film), each made from the film as the model expects it."""
        pixels, maxval, info = self.predictor.film.prepare(image)
        x = self.predictor.preprocess(pixels, maxval)
        if self.shared:
            return x, info
        return np.concatenate([x.ravel(), self.embedder.preprocess(pixels, maxval).ravel()]), info

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        if self.shared:
            features = self.embedder.predict_batch(batch)
            with torch.inference_mode():
                logits = classifier_of(self.predictor.model)(torch.from_numpy(features).to(self.predictor.device))
                scores = self.predictor.scores(logits.float())
        else:
            batch = np.asarray(batch)
            size, other = self.predictor.input_size, self.embedder.input_size
            scores = self.predictor.predict_batch(batch[:, :size * size].reshape(-1, 1, size, size))
            features = self.embedder.predict_batch(batch[:, size * size:].reshape(-1, 1, other, other))
        distance = self.detector.score(features)
        return np.column_stack([scores, distance, distance > self.detector.threshold])


@dataclass(frozen=True)
class Ood:
    """The out-of-distribution columns as an extra of :func:`cxrkit.predict.predict_to_file`.

    ``detector`` is a fitted :class:`OodDetector` or its file; None finds the one fitted for
    the predicting model (``OodDetector.save`` to :func:`detector_path` in the model cache,
    as ``cxr ood-fit`` does), looking first beside ``near`` (the model's weight file).
    """

    detector: OodDetector | str | Path | None = None
    near: str | Path | None = None

    def wrap(self, predictor: Predictor) -> OodPredictor:
        detector = self.detector
        if isinstance(detector, (str, Path)):
            detector = OodDetector.load(detector)
        elif detector is None:
            detector = find_detector(predictor.card, near=self.near)
        if detector is None:
            name = predictor.card.name
            raise MissingFile(f"no out-of-distribution detector is fitted for {name}; embed its training and "
                              f"validation films with cxr embed (model {self.near or name}), then run cxr ood-fit")
        return OodPredictor(predictor, detector)
