"""Chest X-ray age: an age model applied to one film, optionally with deterministic test-time augmentation.

CXR-Age averaged its predictions over fastai's test-time augmentation: the plain image
plus eight views (zoomed 1.35x into each corner, each also mirrored), blended as
``0.4 * plain + 0.6 * mean(views)``. fastai also left the training augmentations (random
lighting, rotation) switched on for those views, so the same film gave a different age on
every run. cxrkit keeps the geometry and the blend and drops the randomness: the eight
views are fixed crops, so the same file gives the same number every time, and their
spread (``cxr_age_sd``, the sample standard deviation of the eight) says how much the
estimate moves with framing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import XrayImage
from ..models import ModelCard
from ..predict.model_runner import ModelRunner
from ..predict.predictor import as_tensor
from ..preprocess import FilmSteps, center_crop, model_input, normalize, resize

__all__ = ["AgeEstimator", "AgeEstimate", "tta_views", "DEFAULT_AGE_MODEL", "TTA_ZOOM", "TTA_BLEND", "TTA_VIEWS"]

DEFAULT_AGE_MODEL = "densenet121.nih-age"
TTA_ZOOM = 1.35  # fastai v1 TTA scale used by CXR-Age
TTA_BLEND = 0.4  # weight of the plain prediction; the eight views share the other 0.6
TTA_VIEWS = 8


def tta_views(pixels: np.ndarray, maxval: float, size: int, tta: bool = True) -> np.ndarray:
    """Model inputs ``(1 + 8, 1, size, size)``: the plain centre-cropped film, then 8 corner zooms.

    View ``i`` (1..8, ``j = i - 1``) crops a square of side ``n / 1.35`` from the film's
    centre square at the top (``j & 1 == 0``) or bottom row, left (``j & 2 == 0``) or right
    column, mirrored left-right when ``j & 4``. With ``tta=False`` only the plain view.
    """
    plain = model_input(pixels, maxval, size)
    return np.stack([plain, *_zooms(pixels, maxval, size)] if tta else [plain]).astype(np.float32, copy=False)


def _zooms(pixels: np.ndarray, maxval: float, size: int) -> list[np.ndarray]:
    """The eight ``(1, size, size)`` corner zooms of :func:`tta_views`, cut from the film's centre square."""
    square = center_crop(pixels)
    n = square.shape[0]
    side = max(1, int(round(n / TTA_ZOOM)))
    views = []
    for j in range(TTA_VIEWS):
        top = (n - side) if j & 1 else 0
        left = (n - side) if j & 2 else 0
        view = normalize(resize(square[top:top + side, left:left + side], size), maxval)
        if j & 4:
            view = view[:, ::-1]
        views.append(np.ascontiguousarray(view)[None])
    return views


@dataclass(frozen=True)
class AgeEstimate:
    """One film's CXR-Age in years; ``sd`` is NaN without test-time augmentation."""

    cxr_age: float
    sd: float
    chronological_age: float | None = None

    @property
    def age_gap(self) -> float | None:
        """CXR-Age minus chronological age (positive: the film looks older than the person is)."""
        return None if self.chronological_age is None else self.cxr_age - self.chronological_age


def _age_model_problem(card: ModelCard) -> str | None:
    """Why a model cannot estimate age (None when it can): one regression output."""
    if card.task == "regression" and len(card.labels) == 1:
        return None
    return f"not an age model: expected a regression model with one output, got a {card.task} model with labels " \
           f"{list(card.labels)[:4]}"


class AgeEstimator(ModelRunner):
    """An age model ready for batched inference: a :class:`~cxrkit.predict.Runner` that
    :func:`cxrkit.predict.predict_files` drives.

    ``prepare`` turns a decoded film into its views (and the age its DICOM header states, if
    any); ``predict_batch`` maps ``(N, V, 1, S, S)`` views to ``(cxr_age, cxr_age_sd)`` rows.
    Inference runs in eval mode without randomness, so the same film gives the same age on
    the same machine; ``precision`` is as for :class:`~cxrkit.predict.Predictor` (``fp32``
    for the reference numbers, ``auto`` uses bf16 where it is native); ``film`` as for the predictor.
    """

    columns = ["cxr_age", "cxr_age_sd"]

    def __init__(self, model: nn.Module | str | None = None, *, tta: bool = False, device: str = "cpu",
                 precision: str = "auto", backend: str = "torch", film: FilmSteps | None = None):
        super().__init__(model, default=DEFAULT_AGE_MODEL, device=device, precision=precision, backend=backend,
                         check=_age_model_problem, film=film)  # the film steps run before the views are cut
        self.tta = tta

    def prepare(self, image: XrayImage) -> tuple[np.ndarray, dict[str, Any]]:
        """Views of one decoded film, and the row fields it carries (the header's age, orientation)."""
        pixels, maxval, info = self.film.prepare(image)
        info["chronological_age"] = image.meta.get("patient_age")
        plain = self.transform(pixels, maxval)  # the card's input; the zooms are CXR-Age's own geometry
        views = [plain, *_zooms(pixels, maxval, self.input_size)] if self.tta else [plain]
        return np.stack(views).astype(np.float32, copy=False), info

    @torch.inference_mode()
    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """``(N, V, 1, S, S)`` views -> ``(N, 2)``: blended age and the views' standard deviation."""
        x = as_tensor(batch)
        n, v = x.shape[:2]
        ages = self.backend(x.reshape(n * v, *x.shape[2:])).reshape(n, v).cpu().numpy()
        if v == 1:
            return np.stack([ages[:, 0], np.full(n, np.nan)], axis=1)
        zooms = ages[:, 1:]
        blended = TTA_BLEND * ages[:, 0] + (1.0 - TTA_BLEND) * zooms.mean(axis=1)
        return np.stack([blended, zooms.std(axis=1, ddof=1)], axis=1)

    def estimate(self, image: XrayImage | str, chronological_age: float | None = None) -> AgeEstimate:
        """CXR-Age of one film (a path or a decoded :class:`~cxrkit.io.XrayImage`), typed: :meth:`run`'s
        row read as an :class:`AgeEstimate`, with ``chronological_age`` when given (else the header's)."""
        row = self.run(image)
        known = chronological_age if chronological_age is not None else row["chronological_age"]
        return AgeEstimate(row["cxr_age"], row["cxr_age_sd"], None if known is None else float(known))

    def __repr__(self) -> str:
        return f"AgeEstimator({self.card.name!r}, tta={self.tta})"
