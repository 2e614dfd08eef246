"""Which way of predicting is fastest on *this* machine: images/s per backend x precision x batch size.

The answer depends on the hardware more than on the code (bf16 is ~4x fp32 on a CPU
with AMX and slower than fp32 where it is emulated; ONNX Runtime beats PyTorch eager on
some CPUs and not on others), so it is measured, on the user's own films, rather than
guessed. Each configuration is timed three ways in one process:

* end to end: :func:`~cxrkit.predict.predict_files`, exactly what a prediction run does
  (decoding ahead in threads, batches, calibration off);
* model only: the same batches of already-prepared inputs through the runner;
* decode only (once): reading and preprocessing every film, one after the other.

``bound = 1 / (1/decode + 1/model)`` is the rate of doing both parts in turn with nothing
wasted; ``end_to_end / bound`` shows how close the pipeline gets to it (above 1 when
read-ahead overlaps decoding with the model on a second core).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CxrkitError
from ..models import DEFAULT_MODEL, ModelCard, card_of, load_model
from ..models.precision import cpu_info
from .engine import predict_files
from .inputs import readable_inputs
from .predictor import Predictor

__all__ = ["BenchResult", "BenchReport", "machine", "run_bench", "decode_rate", "model_rate", "CPU_FLAGS"]

#: the CPU features that decide which precision and runtime win
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


@dataclass
class BenchResult:
    """One configuration; ``skipped`` says why it could not run here (rates are then 0)."""

    backend: str
    precision: str
    batch_size: int
    end_to_end: float = 0.0
    model_only: float = 0.0
    bound: float = 0.0
    skipped: str | None = None

    @property
    def of_bound(self) -> float:
        return self.end_to_end / self.bound if self.bound else 0.0


@dataclass
class BenchReport:
    images: int
    decode_only: float
    machine: dict[str, Any]
    results: list[BenchResult] = field(default_factory=list)

    @property
    def fastest(self) -> BenchResult | None:
        ran = [r for r in self.results if r.skipped is None]
        return max(ran, key=lambda r: r.end_to_end) if ran else None

    def to_dict(self) -> dict[str, Any]:
        fastest = self.fastest
        return {"images": self.images, "decode_only": self.decode_only, "machine": self.machine,
                "results": [{**asdict(r), "of_bound": r.of_bound} for r in self.results],
                "fastest": asdict(fastest) if fastest else None}


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, the flags that matter, library versions."""
    model, flags = cpu_info()
    described = {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                 "cpu_flags": [f for f in CPU_FLAGS if f in flags], "torch": torch.__version__,
                 "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}"}
    try:
        import onnxruntime

        described["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        described["gpu"] = torch.cuda.get_device_name(0)
    return described


def decode_rate(files: Sequence[Path], card: ModelCard) -> tuple[np.ndarray, float]:
    """Every readable film preprocessed as ``card`` says, and the decode-only rate (films/s, one thread)."""
    start = time.perf_counter()
    inputs = readable_inputs(files, card)
    return inputs, len(inputs) / (time.perf_counter() - start)


def model_rate(predictor: Predictor, inputs: np.ndarray, batch_size: int) -> float:
    """Images/s of ``predict_batch`` alone over already-prepared inputs, after one warm-up batch."""
    predictor.predict_batch(inputs[:batch_size])  # warm-up: kernels chosen, memory allocated
    start = time.perf_counter()
    for i in range(0, len(inputs), batch_size):
        predictor.predict_batch(inputs[i:i + batch_size])
    return len(inputs) / (time.perf_counter() - start)


def _end_to_end_rate(predictor: Predictor, files: Sequence[Path], batch_size: int, workers: int) -> float:
    start = time.perf_counter()
    rows = list(predict_files(files, predictor, batch_size=batch_size, workers=workers))
    return len(rows) / (time.perf_counter() - start)


def run_bench(files: Sequence[str | os.PathLike[str]], model: nn.Module | str | None = None, *,
              backends: Sequence[str] = ("torch", "onnx"), precisions: Sequence[str] = ("fp32", "bf16"),
              batch_sizes: Sequence[int] = (1, 8), device: str = "cpu", workers: int = 1) -> BenchReport:
    """Time every backend x precision x batch size on ``files``; a configuration this machine
    cannot run (bf16 in ONNX Runtime, a missing runtime) is kept with the reason."""
    paths = [Path(f) for f in files]
    module = load_model(model, default=DEFAULT_MODEL, device=device)
    inputs, decode = decode_rate(paths, card_of(module))
    report = BenchReport(images=len(paths), decode_only=decode, machine=machine())
    for backend in backends:
        for precision in precisions:
            try:
                predictor = Predictor(module, device=device, precision=precision, calibrate=False, backend=backend)
            except CxrkitError as exc:
                report.results += [BenchResult(backend, precision, b, skipped=str(exc)) for b in batch_sizes]
                continue
            for batch_size in batch_sizes:
                model_only = model_rate(predictor, inputs, batch_size)
                result = BenchResult(backend, predictor.precision, batch_size,
                                     end_to_end=_end_to_end_rate(predictor, paths, batch_size, workers),
                                     model_only=model_only, bound=1.0 / (1.0 / decode + 1.0 / model_only))
                report.results.append(result)
    return report
