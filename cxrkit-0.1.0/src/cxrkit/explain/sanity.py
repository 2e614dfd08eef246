"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

An explanation that looks the same for a trained network and for the same network
with random weights is explaining the image (edges, brightness), not the model. The
check re-draws every weight, explains the same image and label with both models, and
compares the two maps by Spearman rank correlation.

Threshold: |rho| < 0.5 passes. Rank correlation measures whether the two maps order
the pixels the same way; at 0.5 the randomised map accounts for at most a quarter of
the trained map's rank variance. In Adebayo et al. (Fig. 2, 4) the methods they flag
(Guided Backprop, Guided Grad-CAM) stay close to 1 after full randomisation, while
the methods that pass (gradients, Grad-CAM) fall to near 0; 0.5 sits between the two
groups with room on both sides, so a method that fails it is clearly insensitive to
the weights and one that passes is not merely noisy. The correlation is computed in
the model's input frame (the crop region, downsampled to 64 px) so the zero margins
of a non-square film, identical in both maps, do not inflate it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .api import explain
from .errors import ExplainError
from .heatmap import Heatmap, to_input_geometry

__all__ = ["SanityResult", "randomise_weights", "rank_correlation", "randomisation_test", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.5


@dataclass
class SanityResult:
    """Outcome of :func:`randomisation_test`; ``passed`` when ``abs(correlation) < threshold``."""

    correlation: float
    threshold: float
    trained: Heatmap
    randomised: Heatmap

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.correlation) and abs(self.correlation) < self.threshold)


def randomise_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every weight re-drawn (the original is untouched).

    Convolutions and linear layers get Kaiming-normal weights and zero biases (the
    scale that keeps activations finite through a deep network), normalisation
    layers become identities with fresh running statistics. A private generator keeps
    it deterministic without touching the global RNG.
    """
    clone = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in clone.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._NormBase):
                module.reset_parameters()
    return clone


def rank_correlation(a: Heatmap | np.ndarray, b: Heatmap | np.ndarray, *, size: int = 64) -> float:
    """Spearman correlation of two maps of one image, over its crop region at ``size`` px (ties averaged)."""
    maps = [m.array if isinstance(m, Heatmap) else np.asarray(m, dtype=np.float32) for m in (a, b)]
    if maps[0].shape != maps[1].shape:
        raise ExplainError(f"maps differ in shape: {maps[0].shape} vs {maps[1].shape}")
    x, y = (pd.Series(to_input_geometry(m, size).reshape(-1)) for m in maps)
    if x.nunique() < 2 or y.nunique() < 2:
        return 1.0 if x.equals(y) else 0.0
    return float(x.rank().corr(y.rank()))


def randomisation_test(
    model: nn.Module, image: Any, label: str | int = "top", method: str = "gradcam", *,
    threshold: float = DEFAULT_THRESHOLD, seed: int = 0, **options: Any,
) -> SanityResult:
    """Explain ``image`` with ``model`` and with a weight-randomised copy; compare the maps.

    The label is resolved once on the trained model and the randomised model explains
    the same head output, so only the weights differ between the two maps.
    """
    trained = explain(model, image, label, method, **options)
    random_model = randomise_weights(model, seed=seed)
    randomised = explain(random_model, image, int(trained.meta["index"]), method, **options)
    return SanityResult(rank_correlation(trained, randomised), float(threshold), trained, randomised)
