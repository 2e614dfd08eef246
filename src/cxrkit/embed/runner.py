"""Films -> vectors: a runner for the batch engine (:func:`cxrkit.predict.predict_files`).

An :class:`Embedder` has the three members the engine asks of a runner (``columns``,
``prepare``, ``predict_batch``), so an archive is embedded by the same streaming,
resumable, one-row-per-file loop that scores it: decoding ahead in threads, error rows
for unreadable files, nothing redone on resume. Its forward pass is a backend from
:mod:`cxrkit.predict.backends` run on the model cut at the chosen layer, so device and
precision handling are the predictor's too.

Layers: ``features`` is the pooled vector every cxrkit model exposes
(``forward_head(forward_features(x), pre_logits=True)``: 1024-d for DenseNet-121, 512/2048-d for the ResNets, 512-d for
the autoencoder's pooled latent); ``latent`` is an autoencoder's whole latent map,
flattened (4,608-d for the ResNet-101 autoencoder), which keeps where on the film a
feature sits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidArgument, InvalidInput
from ..io import XrayImage
from ..models import DEFAULT_MODEL, ModelCard, load_model
from ..models.precision import resolve_precision
from ..predict.backends import make_backend
from ..predict.engine import predict_files
from ..predict.predictor import as_tensor
from ..preprocess import FilmSteps, model_input

__all__ = ["Embedder", "LAYERS", "vector_columns"]

LAYERS = ("features", "latent")


def vector_columns(dim: int) -> list[str]:
    """Column names of a ``dim``-wide vector in a flat (CSV/JSONL) table: ``v0`` ... ``v{dim-1}``."""
    return [f"v{i}" for i in range(dim)]


class _Cut(nn.Module):
    """``model`` cut at ``layer``: what the backend runs instead of the classifier head."""

    def __init__(self, model: nn.Module, layer: str):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer == "latent":
            return self.model.encode(x).flatten(1)
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def _layer_problem(model: nn.Module, layer: str) -> str | None:
    if layer == "latent" and not callable(getattr(model, "encode", None)):
        return (f"{model.card.name} has no latent code (it is a {model.card.task} model); embed its 'features' layer, "
                "or use an autoencoder such as 101-elastic")
    if not callable(getattr(model, "forward_features", None)):
        return f"{model.card.name} has no forward_features; only cxrkit registry models can be embedded"
    return None


class Embedder:
    """One vector per film from a model's ``features`` or ``latent`` layer; a runner for the batch engine."""

    def __init__(self, model: nn.Module | str | None = None, *, layer: str = "features", device: str = "cpu",
                 precision: str = "auto"):
        resolve_precision(precision, device)  # a bad name fails before seconds of model loading
        if layer not in LAYERS:
            raise InvalidArgument(f"`layer` must be one of {', '.join(LAYERS)}, got {layer!r}")
        self.model = load_model(model, default=DEFAULT_MODEL, device=device)
        problem = _layer_problem(self.model, layer)
        if problem:
            raise InvalidArgument(problem)
        self.card: ModelCard = self.model.card
        self.layer = layer
        self.input_size = self.card.input_size
        self.backend = make_backend("torch", _Cut(self.model, layer), device, precision)
        self.precision = self.backend.precision
        self.dim = self._dim()
        #: one column per vector component (the engine's score columns)
        self.columns = vector_columns(self.dim)
        #: clean-up and orientation fix before embedding (see :class:`cxrkit.preprocess.FilmSteps`)
        self.film = FilmSteps()

    def _dim(self) -> int:
        if self.layer == "latent" and hasattr(self.model, "latent_shape"):
            return math.prod(self.model.latent_shape)
        if self.layer == "features" and isinstance(getattr(self.model, "num_features", None), int):
            return self.model.num_features
        probe = torch.zeros(1, 1, self.input_size, self.input_size)
        return int(self.backend(probe).shape[1])

    def prepare(self, image: XrayImage) -> tuple[np.ndarray, dict[str, Any]]:
        """One decoded film -> (model input, extra row fields), after the :attr:`film` steps."""
        pixels, maxval, info = self.film.prepare(image)
        return model_input(pixels, maxval, self.input_size), info

    def predict_batch(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        """Vectors ``(N, dim)`` float32 for model inputs ``(N, 1, S, S)``."""
        return self.backend(as_tensor(batch)).float().cpu().numpy()

    def embed_files(self, files: Sequence[str | Path], batch_size: int = 8) -> np.ndarray:
        """Vectors ``(len(files), dim)`` of a few films (e.g. search queries); a file that fails is an error."""
        rows = list(predict_files(files, self, batch_size=batch_size))
        failed = [f"{row['file']}: {row['error']}" for row in rows if row["status"] != "ok"]
        if failed:
            raise InvalidInput("cannot embed " + "; ".join(failed))
        return np.array([[row[c] for c in self.columns] for row in rows], dtype=np.float32).reshape(len(rows), self.dim)

    def metadata(self) -> dict[str, Any]:
        """What produced the vectors, stored with them: a search must embed its query the same way."""
        return {"model": self.card.name, "architecture": self.card.architecture, "weights_sha256": self.card.sha256,
                "layer": self.layer, "dim": self.dim, "input_size": self.input_size, "precision": self.precision,
                "film": self._film_settings()}

    def _film_settings(self) -> dict[str, Any]:
        """The film steps in force, so a query can be prepared the same way as the archive."""
        fixer = self.film.orientation
        return {"clean": self.film.clean, "orientation_model": fixer.model.card.name if fixer is not None else None,
                "mirror": bool(fixer is not None and fixer.mirror)}

    def __repr__(self) -> str:
        return f"Embedder({self.card.name!r}, layer={self.layer!r}, dim={self.dim}, precision={self.precision!r})"
