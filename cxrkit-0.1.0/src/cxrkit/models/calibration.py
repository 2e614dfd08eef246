"""Operating-point calibration, TorchXRayVision's ``op_norm`` semantics, keyed by label.

A calibrated model maps each label's chosen operating threshold ``t`` to 0.5, linearly
on each side: ``p / (2t)`` below it and ``1 - (1 - p) / (2 (1 - t))`` above it, so
"> 0.5 means positive at the validated operating point" holds for every label.

One deliberate difference: where a label has no threshold (too few validation positives
to choose one, e.g. Hernia in a small sample, or none published), TorchXRayVision returns
a constant 0.5, which reads as "exactly on the fence" and throws a trained output away.
cxrkit keeps that label's raw probability instead, and the model card lists the label as
uncalibrated (``ModelCard.uncalibrated_labels``), so its 0.5 is *not* an operating point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..errors import InvalidArgument

__all__ = ["threshold_vector", "apply_operating_points", "activate", "ACTIVATIONS"]

#: task -> the activation that turns its logits into what a user reads
ACTIVATIONS = {"multilabel": "sigmoid", "multiclass": "softmax", "regression": "none", "reconstruction": "none"}


def activate(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Logits ``(N, K)`` -> probabilities (sigmoid per label for multilabel, softmax over the
    classes for multiclass) or the values themselves (regression, reconstruction); before any
    operating-point calibration. The one place the task decides the activation, so prediction,
    explanation, export checks and LIME read the same scores."""
    if task not in ACTIVATIONS:
        raise InvalidArgument(f"unknown task {task!r}; one of {', '.join(ACTIVATIONS)}")
    if task == "multilabel":
        return torch.sigmoid(logits)
    if task == "multiclass":
        return torch.softmax(logits, dim=1)
    return logits


def threshold_vector(labels: Sequence[str | None], thresholds: Mapping[str, float]) -> torch.Tensor:
    """Thresholds in head order (NaN where a label has none), from a name-keyed mapping."""
    return torch.tensor(
        [float(thresholds[name]) if name and name in thresholds else float("nan") for name in labels],
        dtype=torch.float32,
    )


def apply_operating_points(probs: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Rescale probabilities ``(N, K)`` so each label's threshold maps to 0.5; unchanged where no threshold."""
    t = thresholds.to(device=probs.device, dtype=probs.dtype).expand_as(probs)
    below = probs / (2 * t)
    above = 1 - (1 - probs) / (2 * (1 - t))
    out = torch.where(probs < t, below, above)
    return torch.where(torch.isnan(t), probs, out)
