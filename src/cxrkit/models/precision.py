"""One precision vocabulary for inference and training, and the measured rule for ``auto``.

Names: ``auto``, ``fp32``, ``bf16``, ``fp16``. Inference runs the network under autocast
in that dtype; training hands Lightning its own spelling (``bf16`` -> ``bf16-mixed``).

``auto`` picks bf16 only where it was measured faster: on CUDA GPUs that support it, and on
CPUs with AMX tiles (``amx_bf16``). Elsewhere fp32 is faster: an AMD EPYC without bf16
instructions ran bf16 about 2x slower than fp32 (oneDNN emulates it), and an Intel Xeon with
AVX512-BF16 but no AMX ran the bundled DenseNet's forward pass in bf16 at 0.68x its fp32 speed
(16.6 vs 24.4 img/s, benchmarks/run_all.py), so ``auto`` never assumes the machine it was
written on.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from ..errors import InvalidArgument, Unavailable
from .loading import parse_device

__all__ = ["PRECISIONS", "canonical_precision", "cpu_has_native_bf16", "cpu_info", "resolve_precision", "lightning_precision",
           "precision_reason"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

#: Lightning's names, accepted too so older configs keep working
_LIGHTNING = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
_ALIASES = {"32-true": "fp32", "32": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16", "16": "fp16"}


@lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags from ``/proc/cpuinfo`` (``("", {})`` where it
    cannot be read, e.g. not Linux: the flags are then unknown, not absent)."""
    model, flags = "", frozenset[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def cpu_has_native_bf16() -> bool:
    """AMX's bf16 tiles among the CPU's flags (False where they cannot be read); AVX512-BF16
    alone does not count: it was measured slower than fp32 (see the module docstring)."""
    return "amx_bf16" in cpu_info()[1]


def canonical_precision(precision: str) -> str:
    """One of :data:`PRECISIONS` for a name or a Lightning alias (``bf16-mixed`` -> ``bf16``), unresolved."""
    name = _ALIASES.get(precision, precision)
    if name not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return name


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``device``; ``auto`` follows the rule in the module docstring.

    fp16 on a CPU is refused: autocast there is slow and loses range for no gain.
    """
    name = canonical_precision(precision)
    kind = parse_device(device).type
    if name == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if name == "fp16" and kind != "cuda":
        raise Unavailable("fp16 is only supported on CUDA; use bf16 (or auto) on a CPU")
    return name


def precision_reason(precision: str, device: str | torch.device = "cpu") -> str:
    """One line saying what ``precision`` resolves to on ``device`` and why (for verbose output)."""
    chosen = resolve_precision(precision, device)
    if canonical_precision(precision) != "auto":
        return f"{chosen} (as asked)"
    if torch.device(device).type == "cuda":
        return f"{chosen} (auto: CUDA GPU {'with' if chosen == 'bf16' else 'without'} bf16)"
    native = "has AMX bf16 tiles" if chosen == "bf16" else "has no AMX bf16 tiles, so fp32 is faster"
    return f"{chosen} (auto: this CPU {native})"


def lightning_precision(precision: str, accelerator: str = "cpu") -> str:
    """Lightning's ``precision`` string for one of :data:`PRECISIONS` (or a Lightning name)."""
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return _LIGHTNING[resolve_precision(precision, "cuda" if gpu else "cpu")]
