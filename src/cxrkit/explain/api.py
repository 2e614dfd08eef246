"""``explain(model, image, label, method)``: one call for every method, in the geometry of the film as scored."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import XrayImage, read_image
from ..models import DEFAULT_MODEL, card_of, load_model
from ..preprocess import FilmSteps, crop_box
from . import attributions, cams
from ._model import frozen, head_order_scores
from .errors import ExplainError, UnknownLabel, UnknownMethod
from .heatmap import Heatmap, to_original_geometry

__all__ = ["explain", "explain_grid", "METHODS", "resolve_label", "load_image", "prepare_film"]

#: Every method name ``explain`` accepts, cheapest first.
METHODS = ("cam", "gradcam", "gradcam++", "saliency", "ig", "occlusion", "lime")

#: Options each method accepts (beyond the common ``calibrate`` and ``device``).
_OPTIONS: dict[str, set[str]] = {
    "cam": set(),
    "gradcam": {"layer"},
    "gradcam++": {"layer"},
    "saliency": set(),
    "ig": {"baseline", "steps", "batch", "sign"},
    "occlusion": {"baseline", "window", "stride", "batch", "sign"},
    "lime": {"baseline", "samples", "kernel_width", "features", "positive_only", "seed", "batch", "segments",
             "kernel_size", "max_dist", "ratio"},
}

#: The "nothing here" image: pixel value 0 (black, air) in the [-1024, 1024] model range.
BLACK = -1024.0


def load_image(image: XrayImage | str | Path | np.ndarray, maxval: float | None = None) -> tuple[np.ndarray, float, str | None]:
    """Accept a path, an :class:`XrayImage` or a 2-D array; return ``(pixels, maxval, source)``.

    A bare array needs its white level: given, or implied by an integer dtype (never
    guessed from the array's maximum, which would brighten every dark film).
    """
    if isinstance(image, (str, Path)):
        decoded = read_image(image)
        return decoded.pixels, float(decoded.maxval), str(image)
    if isinstance(image, XrayImage):
        return image.pixels, float(image.maxval), (image.meta or {}).get("source")
    pixels = np.asarray(image)
    if pixels.ndim != 2:
        raise ExplainError(f"image must be 2-D (H, W), got shape {pixels.shape}")
    if maxval is None:
        if not np.issubdtype(pixels.dtype, np.integer):
            raise ExplainError("a float image needs maxval= (its white level); integer images imply it from the dtype")
        maxval = float(np.iinfo(pixels.dtype).max)
    return pixels, float(maxval), None


def resolve_label(model: nn.Module, label: str | int, scores: torch.Tensor | None = None) -> int:
    """Head index for ``label``: a trained label name, a head index, or ``"top"`` (highest score)."""
    card = getattr(model, "card", None)
    names = list(card.labels) if card is not None else []
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        count = len(names) if names else (scores.shape[-1] if scores is not None else None)
        if count is not None and not 0 <= int(label) < count:
            raise UnknownLabel(f"label index {label} is outside the head (0..{count - 1})")
        return int(label)
    if label == "top":
        if scores is None:
            raise ExplainError("label='top' needs the model's scores")
        s = scores.reshape(-1).clone().float()
        if names:
            s[[i for i, n in enumerate(names) if not n]] = float("-inf")
        s[torch.isnan(s)] = float("-inf")
        return int(torch.argmax(s))
    if label in names:
        return names.index(label)
    lowered = {n.lower(): i for i, n in enumerate(names) if n}
    if str(label).lower() in lowered:
        return lowered[str(label).lower()]
    raise UnknownLabel(f"{card.name if card else 'the model'} does not predict {label!r}; it predicts: {', '.join(n for n in names if n)}")


def prepare_film(image: XrayImage | str | Path | np.ndarray, film: FilmSteps | None = None,
                 maxval: float | None = None) -> XrayImage:
    """The film as the model scores it: decoded, then ``film``'s clean-up and orientation fix.

    Batch prediction with film steps scores the film after them, so a map must be
    computed on, and drawn over, that film; the steps' row fields (the orientation
    found) and whether the film was cleaned go into ``meta``.
    """
    pixels, maxval, source = load_image(image, maxval)
    meta: dict[str, Any] = {"source": source}
    if film is not None:
        pixels, maxval, info = film.prepare(XrayImage(pixels=pixels, maxval=maxval, meta={}))
        meta.update(film=info, cleaned=bool(film.clean))
    return XrayImage(pixels=pixels, maxval=float(maxval), meta=meta)


def check_method(method: str, options: dict[str, Any]) -> None:
    """Refuse an unknown method, or an option the method does not take (a typo must not be ignored)."""
    if method not in METHODS:
        raise UnknownMethod(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise ExplainError(f"{method} does not take option(s) {sorted(unknown)}; it takes {sorted(_OPTIONS[method]) or 'none'}")


def explain(
    model: nn.Module | str | None,
    image: XrayImage | str | Path | np.ndarray,
    label: str | int = "top",
    method: str = "gradcam",
    *,
    calibrate: bool = True,
    device: str | torch.device = "cpu",
    maxval: float | None = None,
    film: FilmSteps | None = None,
    **options: Any,
) -> Heatmap:
    """Explain ``model``'s output for ``label`` on ``image`` with ``method``; the map is in the film's geometry.

    ``model`` is a registry name, a weight file or a module built by ``cxrkit.models``.
    The image is preprocessed exactly as ``cxr predict`` does it (the ``film`` steps when
    given, then centre crop, resize, normalise), the map is computed on that model input,
    then resized back and placed at the crop's offset, so it overlays the film the model
    scored: :attr:`Heatmap.film` (the image given when there are no film steps).

    ``calibrate`` (True: the score is the calibrated probability ``cxr predict`` reports),
    ``device``, ``maxval`` (the white level of a float array). Method options:
    ``layer`` (gradcam, gradcam++), ``baseline`` (ig, occlusion, lime; default black),
    ``steps`` (ig, 50), ``window``/``stride`` (occlusion; input_size/7 and half that),
    ``sign`` (ig: absolute, occlusion: positive), ``samples`` (1000), ``kernel_width``
    (1.75), ``features`` (10), ``positive_only`` (False) and ``seed`` (0) for lime.
    """
    check_method(method, options)
    net = load_model(model, default=DEFAULT_MODEL, device=device, keep_mode=True)
    return _explain(net, prepare_film(image, film, maxval), label, method, calibrate, torch.device(device), options)


def _explain(model: nn.Module, scan: XrayImage, label: str | int, method: str, calibrate: bool,
             device: torch.device, options: dict[str, Any]) -> Heatmap:
    """One map of a prepared film with a ready model (options already checked)."""
    card = card_of(model)
    pixels = scan.pixels
    started = time.perf_counter()
    size, crop = int(card.input_size), card.preprocessing.crop
    x = torch.from_numpy(np.ascontiguousarray(card.transforms()(pixels, scan.maxval)))[None].to(device)

    def pick(logits: torch.Tensor) -> int:
        return resolve_label(model, label, head_order_scores(model, logits, calibrate)[0])

    extra: dict[str, Any] = {}
    with frozen(model):
        if method in ("gradcam", "gradcam++"):
            heat, logits, index, extra = cams.gradcam(model, x, pick, plus_plus=method == "gradcam++", layer=options.get("layer"))
        elif method == "cam":
            heat, logits, index, extra = cams.cam(model, x, pick)
        else:
            with torch.no_grad():
                logits = model(x)[0]
            index = pick(logits[None])
            baseline = float(options.get("baseline", BLACK))
            if method == "saliency":
                heat = attributions.saliency(model, x, index)
            elif method == "ig":
                heat = attributions.integrated_gradients(
                    model, x, index, baseline=baseline, steps=int(options.get("steps", 50)),
                    batch=int(options.get("batch", 8)), sign=options.get("sign", "absolute"),
                )
            elif method == "occlusion":
                window = int(options.get("window", max(2, size // 7)))
                heat = attributions.occlusion(
                    model, x, index, baseline=baseline, window=window, stride=int(options.get("stride", max(1, window // 2))),
                    batch=int(options.get("batch", 8)), sign=options.get("sign", "positive"),
                )
                extra = {"window": window}
            else:
                heat, extra = attributions.lime(
                    model, x, index, baseline=baseline, samples=int(options.get("samples", 1000)),
                    kernel_width=float(options.get("kernel_width", 1.75)), features=int(options.get("features", 10)),
                    positive_only=bool(options.get("positive_only", False)), seed=int(options.get("seed", 0)),
                    batch=int(options.get("batch", 16)), segments=options.get("segments"), task=card.task,
                    **{k: float(options[k]) for k in ("kernel_size", "max_dist", "ratio") if k in options},
                )
                extra["signed"] = True
    score = float(head_order_scores(model, logits[None].cpu(), calibrate)[0, index])
    array = to_original_geometry(heat, pixels.shape[:2], crop, nearest=method == "lime")
    name = (card.labels[index] if index < len(card.labels) else None) or f"output_{index}"
    meta: dict[str, Any] = {
        "model": card.name,
        "task": card.task,
        "source": scan.meta.get("source"),
        "index": index,
        "logit": float(logits[index]),
        "calibrated": bool(calibrate and card.thresholds and card.task == "multilabel"),
        "input_size": size,
        "original_shape": tuple(int(v) for v in pixels.shape[:2]),
        "crop": crop_box(pixels.shape[:2]) if crop else None,
        "options": {k: v for k, v in options.items() if k != "segments"},
        "seconds": time.perf_counter() - started,
        **{k: scan.meta[k] for k in ("film", "cleaned") if k in scan.meta},
        **extra,
    }
    return Heatmap(array=array, label=name, method=method, score=score, meta=meta, film=scan)


def explain_grid(
    model: nn.Module | str | None,
    image: XrayImage | str | Path | np.ndarray,
    labels: Sequence[str | int],
    methods: Sequence[str],
    options: dict[str, dict[str, Any]] | None = None,
    *,
    calibrate: bool = True,
    device: str | torch.device = "cpu",
    maxval: float | None = None,
    film: FilmSteps | None = None,
) -> list[Heatmap]:
    """Every ``label`` x ``method`` map of one image, label-major (the order of a contact sheet).

    The image is decoded, and the ``film`` steps run, once; the model is loaded once.
    ``options`` maps a method name to its own options (e.g. ``{"lime": {"samples": 500}}``);
    the keyword arguments are :func:`explain`'s.
    """
    if not labels or not methods:
        raise ExplainError("explain_grid needs at least one label and one method")
    options = options or {}
    for method in methods:
        check_method(method, options.get(method, {}))
    net = load_model(model, default=DEFAULT_MODEL, device=device, keep_mode=True)
    scan = prepare_film(image, film, maxval)
    where = torch.device(device)
    return [
        _explain(net, scan, label, method, calibrate, where, options.get(method, {}))
        for label in labels
        for method in methods
    ]
