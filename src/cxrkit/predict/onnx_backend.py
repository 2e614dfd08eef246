"""ONNX Runtime as a prediction backend (``make_backend("onnx", model, device, precision)``).

Only the forward pass changes: reading, preprocessing, activation, calibration, error
rows and resume stay with the shared runner, so a CSV from this backend matches the
PyTorch one (fp32) to ~1e-6. The graph comes either from the loaded PyTorch model,
exported in memory (~1-3 s), or from an exported ``.onnx`` file (:func:`load_onnx`),
whose embedded model card then supplies labels and thresholds.

ONNX Runtime gets the same thread count as torch (``torch.get_num_threads()``): two
runtimes each spreading over all cores would oversubscribe them, which on a small
shared machine costs far more than either runtime's kernels save.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..atomic import write_bytes_atomic
from ..errors import InvalidArgument, MissingFile, Unavailable, WeightsError
from ..models import ModelCard, cache_dir, card_of
from .onnx_export import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    TOLERANCE,
    ExportMismatch,
    card_from_metadata,
    cpu_fp32_copy,
    max_difference,
    onnx_bytes,
    require_onnxruntime,
    session_options,
)

__all__ = ["OnnxBackend", "OnnxGraph", "load_onnx", "cached_graph"]

log = logging.getLogger(__name__)


def _providers(device: torch.device) -> list[str | tuple[str, dict[str, int]]]:
    ort = require_onnxruntime()
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    raise Unavailable(f"this onnxruntime build cannot run on {device} (it offers "
                      f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use the torch backend")


class OnnxGraph(nn.Module):
    """An exported ``.onnx`` file standing in for a model: it carries the file's card and runs ONNX Runtime.

    Being an ``nn.Module`` with a ``.card`` lets a file go wherever a loaded model goes
    (``load_model``, ``Predictor``); it has no parameters and cannot be trained.
    """

    def __init__(self, path: str | os.PathLike[str], *, device: str | torch.device = "cpu", threads: int | None = None):
        super().__init__()
        ort = require_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingFile(f"{self.path} does not exist; export a model with cxrkit first")
        self.device = torch.device(device)
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                                providers=_providers(self.device))
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise WeightsError(f"{self.path} is not a readable ONNX model: {exc}") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.card: ModelCard = card_from_metadata(metadata, str(self.path))
        self.metadata = dict(metadata)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.run(x.detach().float().cpu().numpy()))


def load_onnx(path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
              threads: int | None = None) -> OnnxGraph:
    """An exported file ready for :class:`~cxrkit.predict.Predictor` (with the onnx backend) or any runner."""
    return OnnxGraph(path, device=device, threads=threads)


def _weights_digest(module: nn.Module) -> str:
    """sha256 of the tensors themselves (names, dtypes, shapes, bytes), not of the card: weights
    changed in memory (a fine-tuned model) must never meet a graph exported from the old ones."""
    digest = hashlib.sha256(f"{type(module).__name__}|{card_of(module).input_size}".encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"|{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def _check_films(size: int, count: int = 4) -> np.ndarray:
    """Seeded film-like inputs for the parity check of a cached graph (a cache is filled where no
    real film may be at hand): a smooth vertical gradient, two bright blobs and noise over the
    whole [-1024, 1024] range, so every layer sees radiograph-scale values."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    films = []
    for _ in range(count):
        cy, cx = rng.uniform(0.3, 0.7, 2)
        blobs = np.exp(-((y - cy) ** 2 + (x - 0.3) ** 2) * 20) + np.exp(-((y - cx) ** 2 + (x - 0.7) ** 2) * 20)
        film = 0.6 * y + 0.8 * blobs + rng.normal(0, 0.05, (size, size))
        films.append(np.clip(film / max(film.max(), 1e-6), 0, 1) * 2048 - 1024)
    return np.stack(films)[:, None].astype(np.float32)


def cached_graph(model: nn.Module) -> bytes:
    """The ONNX graph of ``model``, exported and checked once per set of weights, then reused.

    Exporting DenseNet-121 costs ~2 s, about what ONNX Runtime saves over PyTorch on a
    100-film job, so every later run with the same weights (keyed by a digest of the
    tensors, the cxrkit version and the opset) loads the file from ``cache_dir()/onnx``.
    A fresh export is checked against PyTorch on seeded film-like inputs and refused
    (:class:`ExportMismatch`) above :data:`~cxrkit.predict.onnx_export.TOLERANCE`; a cache that
    cannot be written (read-only home) only costs the export again next time.
    """
    module = cpu_fp32_copy(model)
    path = cache_dir() / "onnx" / f"{_weights_digest(module)[:32]}-cxrkit{__version__}-opset{OPSET}.onnx"
    if path.is_file():
        log.debug("ONNX graph from the cache: %s", path)
        return path.read_bytes()
    card = card_of(module)
    graph = onnx_bytes(module, card.input_size)
    diff = max_difference(module, graph, _check_films(card.input_size), card.task)
    if not diff <= TOLERANCE:
        raise ExportMismatch(f"the ONNX graph of {card.name} differs from PyTorch by {diff:.3g} in "
                             f"probability (tolerance {TOLERANCE:g})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, graph)
    except OSError as exc:
        log.debug("could not cache the ONNX graph at %s: %s", path, exc.strerror or exc)
    return graph


class OnnxBackend:
    """ONNX Runtime forward pass in fp32; the backend registered as ``"onnx"``."""

    name = "onnx"
    #: ``auto`` resolves to fp32 here even where bf16 is native: ONNX Runtime's CPU bf16 kernels are few
    precisions = ("fp32",)

    def __init__(self, model: nn.Module, device: torch.device, precision: str, *, threads: int | None = None):
        if precision != "fp32":
            raise InvalidArgument(f"the onnx backend runs in fp32 only, not {precision}; choose fp32, or the torch "
                              "backend for reduced precision")
        self.device = torch.device("cpu")  # inputs and logits cross into ONNX Runtime as NumPy arrays
        self.precision = precision
        self._where, self._threads = torch.device(device), threads
        if isinstance(model, OnnxGraph):
            if model.device != self._where:
                model = OnnxGraph(model.path, device=device, threads=threads)
            self.session = model.session
            self._graph: bytes | str = str(model.path)
        else:
            self._graph = cached_graph(model)
            self.session = self._open()
        self.card = card_of(model)

    def _open(self):
        ort = require_onnxruntime()
        return ort.InferenceSession(self._graph, session_options(self._threads), providers=_providers(self._where))

    def __getstate__(self) -> dict:
        """Picklable without its session (Ray ships a predictor to its read tasks and actors): the
        graph travels as bytes (or the exported file's path) and the session is opened again."""
        state = dict(self.__dict__)
        state.pop("session", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.session = self._open()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0])
