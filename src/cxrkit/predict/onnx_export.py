"""ONNX export of any registry model: one self-contained file that carries its model card.

A user who takes a model out of PyTorch (ONNX Runtime on a laptop, a hospital's
inference server) still needs what the card says: which output is which label, the
operating thresholds, the pixel convention, and which weights the graph came from. So
the card travels inside the file as ONNX ``metadata_props``, and the export is verified
on real films before anything is written: a file whose probabilities differ from
PyTorch's by more than the tolerance is refused, never shipped.

The TorchScript exporter (``dynamo=False``) is used on purpose: for DenseNet-121 it
takes ~2 s against ~28 s for the dynamo exporter, writes one file (dynamo writes a
separate ``.onnx.data`` unless told not to), and the outputs agree to ~1e-6.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..atomic import write_bytes_atomic
from ..errors import ExportMismatch, MissingDependency, OutputError, WeightsError
from ..models import DEFAULT_MODEL, ModelCard, activate, card_of, load_model
from ..models.calibration import ACTIVATIONS
from .inputs import readable_inputs

__all__ = ["ExportMismatch", "OnnxExport", "export_onnx", "onnx_bytes", "onnx_metadata", "card_from_metadata",
           "probabilities", "cpu_fp32_copy", "session_options", "TOLERANCE", "INPUT_NAME", "OUTPUT_NAME", "OPSET",
           "max_difference"]


#: Largest |difference in probability| between ONNX Runtime and PyTorch (fp32) accepted on export.
TOLERANCE = 1e-4
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
OPSET = 17


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote and how well the file agrees with PyTorch."""

    path: Path | None
    card: ModelCard
    max_abs_diff: float
    images: int
    seconds: float
    metadata: dict[str, str]


def require_onnx():
    """The ``onnx`` module, or a :class:`MissingDependency` naming the extra to install."""
    try:
        import onnx
    except ImportError:
        raise MissingDependency("cxrkit[onnx]", "ONNX export (onnx is missing)") from None
    return onnx


def require_onnxruntime():
    """The ``onnxruntime`` module, or a :class:`MissingDependency` naming the extra to install."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependency("cxrkit[onnx]", "The ONNX Runtime backend (onnxruntime is missing)") from None
    return onnxruntime


def probabilities(outputs: np.ndarray, task: str) -> np.ndarray:
    """The model's raw outputs turned into what a user reads (before any calibration)."""
    return activate(torch.from_numpy(np.asarray(outputs, dtype=np.float64)), task).numpy()


def _source_sha256(module: nn.Module, card: ModelCard) -> str:
    """The card's sha256 of the weight file; for weights only in memory, the sha256 of their safetensors bytes."""
    if card.sha256:
        return card.sha256
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    return hashlib.sha256(save(tensors)).hexdigest()


def cpu_fp32_copy(model: nn.Module | str | None) -> nn.Module:
    """A float32 CPU copy in eval mode; a module handed in by the caller is left as it was."""
    if model is None or isinstance(model, str):
        return load_model(model, default=DEFAULT_MODEL).float()
    card = card_of(model)
    module = copy.deepcopy(model).to("cpu").to(memory_format=torch.contiguous_format).float().eval()
    module.card = card  # type: ignore[assignment]  # torch types Module.__setattr__ for tensors and modules only
    return module


def onnx_bytes(module: nn.Module, input_size: int) -> bytes:
    """Serialise ``module`` (CPU, fp32, eval) to an ONNX graph with a dynamic batch axis."""
    require_onnx()
    buffer = io.BytesIO()
    dummy = torch.zeros(2, 1, input_size, input_size)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, and says so on every call
        # torch's stub names only paths, but the TorchScript exporter (dynamo=False) writes to a file object too
        torch.onnx.export(module, (dummy,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],  # type: ignore[arg-type]
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return buffer.getvalue()


def onnx_metadata(card: ModelCard, source_sha256: str) -> dict[str, str]:
    """The ``metadata_props`` of an exported file: the whole card plus the fields a reader needs first."""
    size = card.input_size
    return {
        "cxrkit.card": json.dumps(card.to_dict()),
        "cxrkit.version": __version__,
        "labels": json.dumps(card.labels),
        "thresholds": json.dumps(card.thresholds),
        "task": card.task,
        "input": json.dumps({"name": INPUT_NAME, "shape": ["batch", 1, size, size], "dtype": "float32",
                             "normalization": card.normalization}),
        "output": json.dumps({"name": OUTPUT_NAME, "shape": ["batch", len(card.labels)],
                              "activation": ACTIVATIONS[card.task],
                              "calibration": "TorchXRayVision op_norm with the thresholds" if card.thresholds else None}),
        "source_sha256": source_sha256,
    }


def card_from_metadata(metadata: dict[str, str], source: str) -> ModelCard:
    """The model card embedded in an exported file's metadata."""
    if "cxrkit.card" not in metadata:
        raise WeightsError(f"{source} carries no cxrkit model card; export it with cxrkit so labels and "
                          "thresholds travel with the graph")
    return ModelCard.from_dict(json.loads(metadata["cxrkit.card"]), source).validate()


def session_options(threads: int | None = None):
    """ONNX Runtime options with an explicit thread count (torch's by default): never oversubscribe the cores."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise to a user
    return options


def max_difference(module: nn.Module, graph: bytes, inputs: np.ndarray, task: str) -> float:
    """Largest |probability difference| between PyTorch and ONNX Runtime on ``inputs`` (relative for regression)."""
    ort = require_onnxruntime()
    session = ort.InferenceSession(graph, session_options(), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = probabilities(module(torch.from_numpy(inputs)).numpy(), task)
    got = probabilities(session.run([OUTPUT_NAME], {INPUT_NAME: inputs})[0], task)
    diff = np.abs(got - expected)
    if task == "regression":
        diff = diff / np.maximum(1.0, np.abs(expected))
    return float(diff.max())


def export_onnx(model: nn.Module | str | None, output: str | os.PathLike[str] | None,
                images: Sequence[str | os.PathLike[str]], *, tolerance: float = TOLERANCE) -> OnnxExport:
    """Export ``model`` to one ONNX file at ``output`` after checking it on real ``images``.

    Raises :class:`ExportMismatch` (and writes nothing) when ONNX Runtime's probabilities
    differ from PyTorch's by more than ``tolerance``. ``output=None`` verifies only.
    """
    import time

    onnx = require_onnx()
    started = time.perf_counter()
    module = cpu_fp32_copy(model)
    card = card_of(module)
    graph = onnx_bytes(module, card.input_size)
    inputs = readable_inputs(images, card)
    diff = max_difference(module, graph, inputs, card.task)
    if not diff <= tolerance:  # also refuses NaN
        raise ExportMismatch(f"the ONNX graph of {card.name} differs from PyTorch by {diff:.3g} in probability on "
                             f"{len(inputs)} films (tolerance {tolerance:g}); nothing was written")
    metadata = onnx_metadata(card, _source_sha256(module, card))
    metadata.update({"verify_max_abs_diff": f"{diff:.3e}", "verify_images": str(len(inputs)),
                     "verify_tolerance": f"{tolerance:g}", "torch": torch.__version__})
    proto = onnx.load_from_string(graph)
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = card.description
    path = None
    if output is not None:
        path = _write(Path(output), proto.SerializeToString())
    return OnnxExport(path, card, diff, len(inputs), time.perf_counter() - started, metadata)


def _write(path: Path, data: bytes) -> Path:
    """Atomic write, so a failed or interrupted export never leaves half a model under the final name."""
    try:
        return write_bytes_atomic(path, data)
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None

