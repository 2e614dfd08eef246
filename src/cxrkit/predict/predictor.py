"""A model ready for inference: preprocessing, output activation and calibration over a backend.

:class:`Predictor` turns decoded radiographs into per-label scores laid out on the
standard vocabulary (plus any extra labels the model has). A standard label the model
was not trained on comes out as NaN, never as a made-up number. The forward pass itself
(device, precision, runtime) belongs to a backend (:mod:`.backends`), so every runtime
gets the same preprocessing, activation and calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..labels import PATHOLOGIES
from ..models import DEFAULT_MODEL, ModelCard, activate, apply_operating_points, threshold_vector
from ..models.precision import PRECISIONS
from ..preprocess import FilmSteps
from .model_runner import ModelRunner

__all__ = ["Predictor", "PRECISIONS", "as_tensor"]

log = logging.getLogger(__name__)


def as_tensor(batch: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
    """A batch of model inputs (array, tensor or list of arrays) as one float32 tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.float()
    return torch.from_numpy(np.ascontiguousarray(np.stack(batch) if isinstance(batch, list) else batch,
                                                 dtype=np.float32))


def _scores_problem(card: ModelCard) -> str | None:
    """Why a model cannot be scored (None when it can): an autoencoder's card lists no labels."""
    if card.labels:
        return None
    return f"{card.name} is a {card.task} model with no labels to score; use it to embed or reconstruct films"


class Predictor(ModelRunner):
    """Wraps a model with its card for batched, calibrated inference; a :class:`~cxrkit.predict.Runner`.

    ``precision`` is one of :data:`PRECISIONS`: ``auto`` (default) runs bf16 where the
    hardware has it natively (about 4x faster on CPUs with AMX and on recent GPUs; outputs
    move by < 0.01 in probability) and fp32 elsewhere; ``fp32`` gives the reference numbers.
    ``calibrate=True`` applies the card's operating thresholds (TorchXRayVision ``op_norm``
    semantics) when it has any. ``backend`` names the runtime of the forward pass
    (:data:`cxrkit.predict.backends.BACKENDS`). ``film`` is the clean-up and orientation fix
    applied to each film before scoring (default: none, :class:`~cxrkit.preprocess.FilmSteps`).
    """

    def __init__(
        self,
        model: nn.Module | str | None = None,
        *,
        device: str = "cpu",
        precision: str = "auto",
        calibrate: bool = True,
        backend: str = "torch",
        film: FilmSteps | None = None,
    ):
        super().__init__(model, default=DEFAULT_MODEL, device=device, precision=precision, backend=backend,
                         check=_scores_problem, film=film)
        card = self.card
        head = list(card.labels)
        extras = [label for label in card.trained_labels if label not in PATHOLOGIES]
        #: output columns: the 18 standard labels, then any labels outside the vocabulary
        self.columns: list[str] = list(PATHOLOGIES) + extras
        where = {label: i for i, label in enumerate(head) if label}
        self._head_index = torch.tensor([where.get(c, -1) for c in self.columns], dtype=torch.long)
        self._thresholds = None
        if calibrate and card.task == "multilabel" and card.thresholds:
            self._thresholds = threshold_vector(head, card.thresholds).to(self.device)
            if card.uncalibrated_labels:
                log.info("%s has no operating threshold for %s: those columns hold raw probabilities",
                         card.name, card.uncalibrated_labels)

    @property
    def calibrated(self) -> bool:
        return self._thresholds is not None

    def logits(self, batch: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
        """Raw float32 logits ``(N, outputs)`` in head order, on :attr:`device` (no activation, no calibration)."""
        return self.backend(as_tensor(batch)).to(self.device)

    @torch.inference_mode()
    def predict_batch(self, batch: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> np.ndarray:
        """Scores ``(N, len(columns))`` for inputs ``(N, 1, S, S)``; NaN where a label is not predicted."""
        return self.scores(self.logits(batch))

    def scores(self, logits: torch.Tensor) -> np.ndarray:
        """Logits ``(N, outputs)`` in head order -> activated, calibrated scores laid out on :attr:`columns`
        (for callers that run the network themselves, e.g. to reuse its features)."""
        scores = self._activate(logits.to(self.device))
        padded = torch.cat([scores, torch.full_like(scores[:, :1], float("nan"))], dim=1)
        index = self._head_index.clone()
        index[index < 0] = scores.shape[1]
        return padded[:, index.to(self.device)].cpu().numpy()

    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        probs = activate(logits, self.card.task)
        if self._thresholds is not None:
            probs = apply_operating_points(probs, self._thresholds)
        return probs

    def __repr__(self) -> str:
        return f"Predictor({self.card.name!r}, device={str(self.device)!r}, precision={self.precision!r})"
