"""Input-attribution methods through captum: saliency, integrated gradients, occlusion, LIME.

Gradient methods and occlusion explain the *logit* (the quantity Grad-CAM explains too,
and one that does not saturate the way a probability near 0 or 1 does); LIME explains
the probability, as the ``lime`` package and covid-cxr do. Every method takes an
explicit ``seed`` where it samples, and touches no global RNG.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import MissingDependency
from ..models import activate
from .errors import ExplainError

__all__ = ["saliency", "integrated_gradients", "occlusion", "lime", "superpixels", "SIGNS"]

#: How a signed attribution becomes a map: keep |a|, only a > 0, only a < 0, or all (in [-1, 1]).
SIGNS = ("absolute", "positive", "negative", "all")


def _captum():
    try:
        import captum.attr as attr
    except ImportError:  # pragma: no cover
        raise MissingDependency("captum", "saliency, integrated-gradients, occlusion and LIME explanations") from None
    return attr


def _logit(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda inp: model(inp)


def to_map(attribution: torch.Tensor | np.ndarray, sign: str) -> np.ndarray:
    """(…, S, S) attribution -> (S, S) float32 map, in [0, 1] (or [-1, 1] for ``sign="all"``)."""
    if sign not in SIGNS:
        raise ExplainError(f"sign must be one of {SIGNS}, got {sign!r}")
    a = attribution.detach().float().cpu().numpy() if isinstance(attribution, torch.Tensor) else np.asarray(attribution)
    a = a.reshape(a.shape[-2:]).astype(np.float32)
    if sign == "absolute":
        a = np.abs(a)
    elif sign == "positive":
        a = np.maximum(a, 0)
    elif sign == "negative":
        a = np.maximum(-a, 0)
    top = float(np.abs(a).max()) if a.size else 0.0
    return a / top if top > 0 else np.zeros_like(a)


def saliency(model: nn.Module, x: torch.Tensor, index: int) -> np.ndarray:
    """|∂logit/∂input| (Simonyan et al. 2014), the gradient saliency CXR-Age shows."""
    attr = _captum()
    grads = attr.Saliency(_logit(model)).attribute(x.detach().clone().requires_grad_(True), target=index, abs=True)
    return to_map(grads, "absolute")


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, index: int, *, baseline: float, steps: int = 50,
    batch: int = 8, sign: str = "absolute",
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) from a constant ``baseline`` image."""
    attr = _captum()
    ig = attr.IntegratedGradients(_logit(model))
    result = ig.attribute(x.detach().clone(), baselines=baseline, target=index, n_steps=steps, internal_batch_size=batch)
    return to_map(result, sign)


def occlusion(
    model: nn.Module, x: torch.Tensor, index: int, *, baseline: float, window: int, stride: int,
    batch: int = 8, sign: str = "positive",
) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014): how much the logit drops when a square is blanked out."""
    attr = _captum()
    result = attr.Occlusion(_logit(model)).attribute(
        x.detach().clone(), sliding_window_shapes=(1, window, window), strides=(1, stride, stride),
        baselines=baseline, target=index, perturbations_per_eval=batch,
    )
    return to_map(result, sign)


def superpixels(x: torch.Tensor, *, kernel_size: float = 4, max_dist: float = 200, ratio: float = 0.2, seed: int = 0) -> np.ndarray:
    """Quickshift superpixels of the model input, with the ``lime`` package's default parameters.

    The input is scaled to [0, 255] grey and repeated to three channels, which is what
    ``lime_image`` hands quickshift for an 8-bit radiograph, so segment sizes match it.
    """
    try:
        from skimage.segmentation import quickshift
    except ImportError:  # pragma: no cover
        raise MissingDependency("scikit-image", "LIME superpixels") from None
    img = x.detach().float().cpu().numpy().reshape(x.shape[-2:])
    grey = (img + 1024.0) / 2048.0 * 255.0
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float64)
    segments = quickshift(rgb, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio, convert2lab=False, rng=seed)
    _, dense = np.unique(segments, return_inverse=True)  # 0..n-1, as captum's feature mask wants
    return dense.reshape(segments.shape).astype(np.int64)


def lime(
    model: nn.Module, x: torch.Tensor, index: int, *, baseline: float, samples: int = 1000,
    kernel_width: float = 1.75, features: int = 10, positive_only: bool = False, seed: int = 0,
    batch: int = 16, segments: np.ndarray | None = None, task: str = "multilabel",
    kernel_size: float = 4, max_dist: float = 200, ratio: float = 0.2,
) -> tuple[np.ndarray, dict]:
    """LIME (Ribeiro et al. 2016) on quickshift superpixels, as covid-cxr configures the ``lime`` package.

    captum's ``Lime`` does the sampling and fitting (``lime`` 0.2.0.1 works but has had no
    release since 2020); the pieces are set to ``lime_image``'s behaviour: the first
    sample is the unperturbed image, samples switch superpixels off with probability
    1/2, the weight of a sample is ``sqrt(exp(-d^2 / w^2))`` with ``d`` the cosine
    distance of its on/off vector to all-on and ``w = kernel_width``, and the surrogate
    is a ridge regression with alpha 1 (captum's default lasso with alpha 0.01 returns
    all-zero weights on radiographs). Switched-off superpixels take ``baseline``. The
    map keeps the ``features`` superpixels of largest |weight|, signed (positive and
    negative regions) and scaled to [-1, 1]; ``seed`` fixes segments and samples.
    ``kernel_size``/``max_dist``/``ratio`` are quickshift's (lime's defaults: about
    30 superpixels on a 224 px radiograph; use a smaller ``kernel_size`` for finer ones).
    """
    attr = _captum()
    try:
        from captum._utils.models.linear_model import SkLearnRidge
    except ImportError:  # pragma: no cover
        raise MissingDependency("scikit-learn", "LIME's ridge surrogate") from None
    if segments is None:
        segments = superpixels(x, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio, seed=seed)
    mask = torch.from_numpy(segments)[None, None]
    n_features = int(segments.max()) + 1
    generator = torch.Generator().manual_seed(seed)
    state = {"first": True}

    def perturb(original: torch.Tensor, **kwargs) -> torch.Tensor:
        if state["first"]:
            state["first"] = False
            return torch.ones(1, n_features, dtype=torch.long)
        return torch.bernoulli(torch.full((1, n_features), 0.5), generator=generator).long()

    def similarity(original, perturbed, interpretable, **kwargs) -> torch.Tensor:
        z = interpretable.float().reshape(-1)
        on = float(z.sum())
        distance = 1.0 - (on / (np.sqrt(on) * np.sqrt(z.numel())) if on > 0 else 0.0)
        return torch.tensor([np.sqrt(np.exp(-(distance**2) / kernel_width**2))])

    def probability(inp: torch.Tensor) -> torch.Tensor:
        logits = model(inp)
        return activate(logits, task)

    explainer = attr.Lime(probability, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=similarity, perturb_func=perturb)
    weights = explainer.attribute(
        x.detach().clone(), baselines=baseline, target=index, feature_mask=mask, n_samples=samples,
        perturbations_per_eval=batch, return_input_shape=False,
    )
    w = weights.detach().float().reshape(-1).cpu().numpy()
    order = np.argsort(-(np.maximum(w, 0) if positive_only else np.abs(w)), kind="stable")
    keep = [int(i) for i in order[:features] if w[i] != 0 and (w[i] > 0 or not positive_only)]
    shown = np.zeros_like(w)
    shown[keep] = w[keep]
    top = float(np.abs(shown).max()) if keep else 0.0
    heat = (shown / top if top > 0 else shown)[segments].astype(np.float32)
    return heat, {"superpixels": n_features, "features": keep, "weights": [float(v) for v in w]}
