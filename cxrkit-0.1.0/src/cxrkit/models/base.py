"""The one model type: what every registered architecture is, and what every caller may rely on.

timm's surface, with timm's meanings, so a reader who knows timm knows cxrkit's models:

* ``forward_features(x)`` -> the last feature map ``(N, C, h, w)`` (after its activation):
  what CAM and Grad-CAM look at;
* ``forward_head(features, pre_logits=False)`` -> global average pool, then the classifier;
  ``pre_logits=True`` stops after pooling, giving the ``(N, num_features)`` vector that
  embeddings, similar-film search and the OOD detector use;
* ``forward(x) = forward_head(forward_features(x))`` -> logits, never activated (losses
  and calibration decide what to apply);
* ``get_classifier()`` / ``reset_classifier(num_classes)`` -> the head itself (training
  freezes or replaces it; CAM applies it per position);
* ``card`` -> the :class:`~cxrkit.models.ModelCard` that :func:`cxrkit.models.create` attaches:
  labels in head order, thresholds, input contract, provenance and evidence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import Unavailable
from .card import ModelCard

__all__ = ["CxrModel"]


class CxrModel(nn.Module):
    """Base of every registered architecture (see the module docstring for the contract)."""

    #: width of the pooled vector ``forward_head(..., pre_logits=True)`` returns
    num_features: int
    #: set by :func:`cxrkit.models.create` / :func:`cxrkit.models.build`
    card: ModelCard

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every architecture overrides it
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """The linear head over the pooled vector."""
        raise Unavailable(f"{type(self).__name__} has no classification head")

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head, e.g. to fine-tune on a new label set."""
        raise Unavailable(f"{type(self).__name__} has no classification head")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return pooled if pre_logits else self.get_classifier()(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (no activation)."""
        return self.forward_head(self.forward_features(x))
