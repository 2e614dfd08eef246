"""Backends: what turns a batch of model inputs into logits, so the runners above it need not care.

:class:`~cxrkit.predict.Predictor` and :class:`~cxrkit.age.AgeEstimator` own everything
that makes a score a score (preprocessing, activation, calibration, the column layout);
a backend owns only the forward pass and where and how it runs. Another runtime (ONNX
Runtime, TensorRT) then plugs in without touching preprocessing or calibration, and every
backend is checked against the same numbers.

Contract of a backend (what :func:`make_backend` returns):

* It is built by a factory ``factory(model, device, precision)``: ``model`` is a loaded
  ``nn.Module`` in eval mode with its ``.card`` (``cxrkit.models.load_model``), ``device``
  a checked :class:`torch.device`, ``precision`` already resolved to ``"fp32"``, ``"bf16"``
  or ``"fp16"`` (never ``"auto"``). A backend that cannot honour a precision or device
  raises :class:`~cxrkit.errors.CxrkitError` saying what to choose instead.
* ``backend(x)`` takes a float32 ``torch.Tensor`` of shape ``(N, 1, S, S)`` (``S`` =
  ``model.card.input_size``) on any device and returns the float32 logits ``(N, outputs)``
  in the head order of ``model.card.labels``, on any device; it never applies an
  activation. It runs without autograd and is deterministic for a given input.
* Attributes: ``name`` (the registry key), ``device`` (:class:`torch.device` where the
  runner should keep its own tensors) and ``precision`` (the precision actually used,
  reported in summaries).
* A factory may declare ``precisions`` (a tuple of the names it runs, e.g. ``("fp32",)``):
  ``auto`` then falls back to ``fp32`` where its hardware choice is not among them, while
  an explicitly requested precision is passed through for the backend to refuse.

Backends are registered in :data:`BACKENDS` as ``name -> "module:factory"`` and imported
only when asked for, so an optional runtime costs nothing until it is used. The name
``auto`` (:func:`choose_backend`) picks the fastest of them for the device and precision.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import ExportMismatch, InvalidArgument, Unavailable
from ..models.card import ModelCard
from ..models.loading import check_device, load_model
from ..models.precision import resolve_precision

__all__ = ["Backend", "BACKENDS", "TorchBackend", "choose_backend", "make_backend", "load_with_backend"]

log = logging.getLogger(__name__)


@runtime_checkable
class Backend(Protocol):
    """The forward pass of a runner: float32 ``(N, 1, S, S)`` inputs -> float32 logits."""

    name: str
    device: torch.device
    precision: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


#: backend name -> ``"module:factory"``; the factory is ``factory(model, device, precision) -> Backend``
BACKENDS: dict[str, str] = {
    "torch": "cxrkit.predict.backends:TorchBackend",
    "onnx": "cxrkit.predict.onnx_backend:OnnxBackend",
}


class TorchBackend:
    """PyTorch eager inference: autocast in the chosen precision, channels-last memory.

    Channels-last lets oneDNN and cuDNN pick their fastest convolution kernels (it is what
    makes bf16 on AMX CPUs about 4x faster); fp32 results do not depend on it beyond
    float rounding.
    """

    name = "torch"
    precisions = ("fp32", "bf16", "fp16")

    def __init__(self, model: nn.Module, device: torch.device, precision: str):
        if precision == "fp16" and device.type != "cuda":
            raise Unavailable("fp16 is only supported on CUDA; use bf16 (or auto) on a CPU")
        self.device = device
        self.precision = precision
        self.model = model.to(device).to(memory_format=torch.channels_last).eval()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, dtype=torch.float32).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            logits = self.model(x)
        return logits.float()


def _factory(name: str) -> Callable[[nn.Module, torch.device, str], Backend]:
    if name not in BACKENDS:
        raise InvalidArgument(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    module_name, _, attribute = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an optional runtime that is not installed
        raise Unavailable(f"the {name} backend needs a package that is not installed ({exc.name or exc}); "
                          "install it or use the torch backend") from None
    return getattr(module, attribute)


def choose_backend(device: str | torch.device = "cpu", precision: str = "auto") -> tuple[str, str]:
    """The backend ``auto`` runs for ``device`` and ``precision``, and why (for ``--verbose``).

    The rule follows what was measured on DenseNet-121 (``docs/performance.md``): on a GPU,
    and wherever the precision is reduced (bf16 on CPUs with AMX, about 2-4x
    fp32), PyTorch; for fp32 on a CPU, ONNX Runtime when it is installed (about 1.3x
    PyTorch's fp32 forward on a CPU without AMX), else PyTorch. ``cxr bench``
    measures every backend on the user's own films where the rule should be checked.
    """
    where = check_device(device)
    chosen = resolve_precision(precision, where)
    if where.type != "cpu":
        return "torch", f"{where.type} runs on PyTorch"
    if chosen != "fp32":
        return "torch", f"{chosen} runs on PyTorch; ONNX Runtime's CPU kernels are fp32"
    if all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime")):
        return "onnx", "fp32 on this CPU, where ONNX Runtime is faster than PyTorch"
    return "torch", "fp32 on this CPU; installing cxrkit[onnx] would run the faster ONNX Runtime"


def make_backend(name: str, model: nn.Module, device: str | torch.device = "cpu",
                 precision: str = "auto") -> Backend:
    """The backend ``name`` (or ``"auto"``, :func:`choose_backend`) for a loaded ``model`` on
    ``device``; ``precision`` is any of :data:`cxrkit.models.precision.PRECISIONS` and is
    resolved for ``device`` here."""
    where = check_device(device)
    if name == "auto":
        name, reason = choose_backend(where, precision)
        log.info("backend %s: %s", name, reason)
        if name == "onnx":
            try:
                return make_backend("onnx", model, where, precision)
            except ExportMismatch as exc:  # never trade correct numbers for speed
                log.warning("running on torch instead: %s", exc)
                name = "torch"
    factory = _factory(name)
    chosen = resolve_precision(precision, where)
    supported = getattr(factory, "precisions", None)
    if precision == "auto" and supported and chosen not in supported:
        chosen = "fp32"
    return factory(model, where, chosen)


def load_with_backend(model: nn.Module | str | None, *, default: str, device: str | torch.device = "cpu",
                      precision: str = "auto", backend: str = "torch",
                      check: Callable[[ModelCard], str | None] | None = None,
                      forward: Callable[[nn.Module], nn.Module] | None = None) -> tuple[nn.Module, Backend]:
    """A runner's set-up in one call: the model (:func:`cxrkit.models.load_model`) and its backend.

    The precision name is checked first, so a typo fails before seconds of model loading.
    ``forward(model)``, when given, is the module the backend runs instead of the whole model
    (an embedder's network cut at a layer); it may raise to refuse the model.
    """
    resolve_precision(precision, device)
    if isinstance(model, str) and model.lower().endswith(".onnx"):
        # an exported file carries its own card; only ONNX Runtime can run it
        if backend not in ("onnx", "auto"):
            raise InvalidArgument(f"{Path(model).name} is an ONNX file: it runs on the onnx backend, not {backend!r}")
        from .onnx_backend import load_onnx

        model = load_onnx(model, device=device)
        backend = "onnx"
    module = load_model(model, default=default, device=device, check=check)  # the backend picks the memory layout
    return module, make_backend(backend, module if forward is None else forward(module), device, precision)
