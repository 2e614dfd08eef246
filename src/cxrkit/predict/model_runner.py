"""What every model runner sets up the same way: model, backend, card, device, precision, input transform, film steps.

:class:`~cxrkit.predict.Predictor`, :class:`~cxrkit.age.AgeEstimator` and
:class:`~cxrkit.embed.Embedder` differ in what they make of the network's output, not in
how a film reaches it. :class:`ModelRunner` holds that common part, so a fix to loading,
precision or preprocessing lands in every runner at once, and a new runner writes only
its columns and ``predict_batch``. It also gives every runner the same verb for one film,
:meth:`ModelRunner.run`, computed exactly as the batch engine computes a row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidArgument
from ..io import XrayImage, read_image
from ..models import ModelCard, card_of, load_model
from ..preprocess import DEFAULT_ORIENTATION_MODEL, FilmSteps, ModelInput, OrientationFixer
from .backends import Backend, load_with_backend

__all__ = ["ModelRunner", "film_steps"]


def film_steps(*, clean: bool = False, orientation_model: str | None = None, mirror: bool = False,
               device: str | torch.device = "cpu", **clean_options: Any) -> FilmSteps:
    """The :class:`~cxrkit.preprocess.FilmSteps` that plain settings name: clean-up on or off
    (``clean_options`` as for ``FilmSteps``), an orientation model by name or file (loaded onto
    ``device``) and whether it also undoes mirroring.

    Settings are how steps travel where a module cannot: the command line's flags and the
    ``film`` settings an embedding table stores (:meth:`cxrkit.embed.Embedder.metadata`, whose
    keys are these keywords) both become steps here, so a query is prepared as its archive was.
    In code, building ``FilmSteps(orientation=OrientationFixer(model))`` directly is the same.
    """
    if mirror and not orientation_model:
        raise InvalidArgument("undoing mirroring needs an orientation model to find the turn first")
    fixer = None
    if orientation_model:
        turns = load_model(orientation_model, default=DEFAULT_ORIENTATION_MODEL, device=device)
        fixer = OrientationFixer(turns, mirror=mirror)
    return FilmSteps(clean=clean, orientation=fixer, **clean_options)


class ModelRunner:
    """A loaded model on its backend, with its card, the film steps before it and its input transform.

    ``model`` is a loaded module, a registry name or weight file (``default`` when None);
    ``device``, ``precision`` and ``backend`` are as for :func:`~cxrkit.predict.backends.load_with_backend`,
    as are ``check`` (a card the runner cannot use is refused before the backend is built)
    and ``forward`` (the part of the model the backend runs). ``film`` is the clean-up and
    orientation fix applied to each film before the model (default: none).
    """

    columns: list[str]

    def __init__(self, model: nn.Module | str | None, *, default: str, device: str = "cpu", precision: str = "auto",
                 backend: str = "torch", check: Callable[[ModelCard], str | None] | None = None,
                 forward: Callable[[nn.Module], nn.Module] | None = None, film: FilmSteps | None = None):
        self.model: nn.Module
        self.backend: Backend
        self.model, self.backend = load_with_backend(model, default=default, device=device, precision=precision,
                                                     backend=backend, check=check, forward=forward)
        self.card: ModelCard = card_of(self.model)
        self.device: torch.device = self.backend.device
        #: the precision the backend runs (``auto`` resolved)
        self.precision: str = self.backend.precision
        self.input_size: int = self.card.input_size
        #: the card's input transform (:meth:`cxrkit.models.ModelCard.transforms`): decoded pixels -> model input
        self.transform: ModelInput = self.card.transforms()
        #: clean-up and orientation fix before the model (see :class:`cxrkit.preprocess.FilmSteps`)
        self.film: FilmSteps = film if film is not None else FilmSteps()

    def preprocess(self, pixels: np.ndarray, maxval: float) -> np.ndarray:
        """One decoded image -> the model's (1, S, S) float32 input, as its card prescribes."""
        return self.transform(pixels, maxval)

    def prepare(self, image: XrayImage) -> tuple[np.ndarray, dict[str, Any]]:
        """One decoded film -> (model input, extra row fields), after the :attr:`film` steps."""
        pixels, maxval, info = self.film.prepare(image)
        return self.preprocess(pixels, maxval), info

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - every runner overrides it
        """Prepared inputs ``(N, ...)`` -> ``(N, len(columns))``."""
        raise NotImplementedError

    def run(self, image: XrayImage | str | os.PathLike[str]) -> dict[str, Any]:
        """One film (a path or a decoded :class:`~cxrkit.io.XrayImage`) -> its row fields: those of
        the film steps (orientation, the header's age), then one value per :attr:`columns`.

        The one verb for one film on every runner (``Predictor(name).run("chest.png")["Effusion"]``),
        computed as the batch engine computes that film's row. A film that cannot be read or
        scored raises its typed error here, where the engine would write an error row instead.
        """
        film = image if isinstance(image, XrayImage) else read_image(image)
        x, fields = self.prepare(film)
        out = self.predict_batch(x[None])[0]
        return {**fields, **dict(zip(self.columns, map(float, out), strict=True))}
