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

The view: an :class:`Embedder` sees the whole film, as the classifier does (what the
out-of-distribution flag shares with it). For search, ``cxr embed`` trims the outer
:data:`RETRIEVAL_TRIM` (8 %) of each side off before the film is sized for the model. A
film's border is where copies of one film differ most and tell least: a turn
of 3 degrees adds black corners, a re-export crops a few per cent, a scanner adds its frame. On
246 NIH films the bundled model never trained on, a 3 degree turn was found as its original's
nearest film for 69 of 100 copies on the whole film and 100 of 100 on the trimmed one, a 4 %
crop 89 -> 100 (PCA whitening, benchmarks/similar_altered_copies.py). The trim is stored with
the vectors, so a query is embedded as its archive was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InvalidArgument, InvalidInput
from ..models import DEFAULT_MODEL, card_of
from ..predict.contract import encoder_of, features_of
from ..predict.engine import predict_files
from ..predict.model_runner import ModelRunner, film_steps
from ..predict.predictor import as_tensor
from ..preprocess import FilmSteps

__all__ = ["Embedder", "LAYERS", "RETRIEVAL_TRIM", "trim_border", "vector_columns"]

LAYERS = ("features", "latent")
#: the fraction of each side of a film left out of a search embedding (see the module's docstring)
RETRIEVAL_TRIM = 0.08


def trim_border(pixels: np.ndarray, fraction: float) -> np.ndarray:
    """``pixels`` without ``fraction`` of its height off the top and bottom and of its width off each side."""
    if fraction <= 0:
        return pixels
    h, w = pixels.shape[:2]
    dy, dx = round(h * fraction), round(w * fraction)
    return pixels[dy:h - dy, dx:w - dx]


def vector_columns(dim: int) -> list[str]:
    """Column names of a ``dim``-wide vector in a flat (CSV/JSONL) table: ``v0`` ... ``v{dim-1}``."""
    return [f"v{i}" for i in range(dim)]


class _Cut(nn.Module):
    """``model`` cut at ``layer``: what the backend runs instead of the classifier head."""

    def __init__(self, model: nn.Module, layer: str):
        super().__init__()
        self.model, self.layer = model, layer

    @classmethod
    def of(cls, model: nn.Module, layer: str) -> _Cut:
        """``model`` cut at ``layer``, or :class:`~cxrkit.errors.InvalidArgument` saying why it cannot be."""
        problem = _layer_problem(model, layer)
        if problem:
            raise InvalidArgument(problem)
        return cls(model, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer == "latent":
            return encoder_of(self.model).encode(x).flatten(1)
        parts = features_of(self.model)
        return parts.forward_head(parts.forward_features(x), pre_logits=True)


def _layer_problem(model: nn.Module, layer: str) -> str | None:
    if layer == "latent" and not callable(getattr(model, "encode", None)):
        return (f"{card_of(model).name} has no latent code (it is a {card_of(model).task} model); embed its 'features' layer, "
                "or use an autoencoder such as 101-elastic")
    if not callable(getattr(model, "forward_features", None)):
        return f"{card_of(model).name} has no forward_features; only cxrkit registry models can be embedded"
    return None


class Embedder(ModelRunner):
    """One vector per film from a model's ``features`` or ``latent`` layer; a runner for the batch engine.

    ``film`` is the clean-up and orientation fix applied before embedding (default: none); it is
    recorded in :meth:`metadata`, so a search prepares its queries the same way.
    """

    def __init__(self, model: nn.Module | str | None = None, *, layer: str = "features", device: str = "cpu",
                 precision: str = "auto", film: FilmSteps | None = None, trim: float = 0.0):
        if layer not in LAYERS:
            raise InvalidArgument(f"`layer` must be one of {', '.join(LAYERS)}, got {layer!r}")
        if not 0 <= trim < 0.25:
            raise InvalidArgument(f"`trim` is the fraction of each side left out, from 0 to below 0.25; got {trim!r}")
        super().__init__(model, default=DEFAULT_MODEL, device=device, precision=precision, film=film,
                         forward=lambda loaded: _Cut.of(loaded, layer))
        self.layer = layer
        #: the fraction of each side of the film left out (0: the whole film, as the classifier sees it)
        self.trim = float(trim)
        self.dim = self._dim()
        #: one column per vector component (the engine's score columns)
        self.columns = vector_columns(self.dim)

    @classmethod
    def for_table(cls, metadata: Mapping[str, Any], *, model: str | None = None, device: str = "cpu",
                  precision: str | None = None) -> Embedder:
        """The embedder whose vectors compare with a table's (its :func:`~cxrkit.embed.read_embeddings`
        ``metadata``): the table's model, layer, view (``trim``) and film steps, at the table's
        precision unless ``precision`` is given. ``model`` may name another file of the same weights.

        A query embedded any other way lands elsewhere in the space (a whole film against trimmed
        ones, a turned film against fixed ones), so searches and the duplicate finder build their
        embedder here. Tables written before the view was stored hold whole films.
        """
        if not metadata.get("model") or metadata.get("layer") is None:
            raise InvalidInput("the table does not say which model and layer made its vectors; embed the films again")
        film = metadata.get("film") or {}
        turns = film.get("orientation_model") or None
        steps = film_steps(clean=bool(film.get("clean")), orientation_model=turns, mirror=bool(turns and film.get("mirror")),
                           device=device)
        embedder = cls(model or metadata["model"], layer=metadata["layer"], device=device,
                       precision=precision or metadata.get("precision", "auto"), film=steps,
                       trim=float(metadata.get("trim") or 0.0))
        sha = metadata.get("weights_sha256")
        if sha and embedder.card.sha256 != sha:
            raise InvalidInput(f"the table was embedded with other weights ({metadata['model']}, sha256 {sha[:12]}...) "
                               f"than {embedder.card.name}; embed with the model that built it")
        return embedder

    def _dim(self) -> int:
        latent_shape, num_features = getattr(self.model, "latent_shape", None), getattr(self.model, "num_features", None)
        if self.layer == "latent" and latent_shape is not None:
            return math.prod(latent_shape)
        if self.layer == "features" and isinstance(num_features, int):
            return num_features
        probe = torch.zeros(1, 1, self.input_size, self.input_size)
        return int(self.backend(probe).shape[1])

    def preprocess(self, pixels: np.ndarray, maxval: float) -> np.ndarray:
        """Film pixels (after the film steps) -> the model's (1, S, S) float32 input: trimmed, then as the card says."""
        return self.transform(trim_border(pixels, self.trim), maxval)

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
                "trim": self.trim, "film": self._film_settings()}

    def _film_settings(self) -> dict[str, Any]:
        """The film steps in force, so a query can be prepared the same way as the archive."""
        fixer = self.film.orientation
        return {"clean": self.film.clean, "orientation_model": card_of(fixer.model).name if fixer is not None else None,
                "mirror": bool(fixer is not None and fixer.mirror)}

    def __repr__(self) -> str:
        return (f"Embedder({self.card.name!r}, layer={self.layer!r}, dim={self.dim}, precision={self.precision!r}, "
                f"trim={self.trim:g})")
