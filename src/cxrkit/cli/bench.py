"""``cxr bench``: images/s of every backend x precision x batch size on this machine, and the fastest."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InvalidArgument, Unavailable
from ..models import DEFAULT_MODEL
from . import _options
from ._batch import input_files
from ._output import console, emit, speaks_flags, table


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@speaks_flags()
def bench(
    paths: list[Path] = typer.Argument(..., help="Real films (files and/or folders) to time on; the first --images are used."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model id, TorchXRayVision name or .safetensors file."),
    images: int = typer.Option(64, "--images", "-n", min=1, help="How many films to time (each configuration reads them all)."),
    backends: str = typer.Option("torch,onnx", "--backends", help="Backends to compare, separated by commas."),
    precisions: str = typer.Option("fp32,bf16", "--precisions", help="Precisions to compare, separated by commas."),
    batch_sizes: str = typer.Option("1,8", "--batch-sizes", help="Batch sizes to compare, separated by commas."),
    device: str = _options.DEVICE,
    workers: int = _options.WORKERS,
    fmt: str = _options.FORMAT,
) -> None:
    """Time prediction on your own films and say which backend, precision and batch size is fastest here.

    End to end is what `cxr predict` achieves; model only and decode only are its two parts
    timed apart, and "of bound" compares end to end with doing both in turn.
    """
    from ..predict.bench import run_bench

    try:
        sizes = [int(b) for b in _names(batch_sizes)]
    except ValueError:
        raise InvalidArgument(f"--batch-sizes must be whole numbers separated by commas, got {batch_sizes!r}") from None
    if not sizes or min(sizes) < 1:
        raise InvalidArgument("--batch-sizes needs at least one size of 1 or more")
    files = input_files(paths)[:images]  # refuses an empty folder
    report = run_bench(files, model, backends=_names(backends), precisions=_names(precisions), batch_sizes=sizes,
                       device=device, workers=workers)
    if fmt == "json":
        emit(report.to_dict(), "json")
        return
    m = report.machine
    console.print(f"{m['cpu']}, {m['cores']} cores, torch threads {m['torch_threads']}, "
                  f"flags: {' '.join(m['cpu_flags']) or 'none of note'}", highlight=False)
    console.print(f"{report.images} films; decode only {report.decode_only:.1f} img/s", highlight=False)
    rows: list[list[object]] = []
    reasons: dict[str, str] = {}
    for r in report.results:
        if r.skipped:
            reasons.setdefault(f"{r.backend} {r.precision}", r.skipped)
            rows.append([r.backend, r.precision, r.batch_size, "skipped", "", "", ""])
        else:
            rows.append([r.backend, r.precision, r.batch_size, f"{r.end_to_end:.1f}", f"{r.model_only:.1f}",
                         f"{r.bound:.1f}", f"{r.of_bound:.0%}"])
    console.print(table(["backend", "precision", "batch", "end to end img/s", "model only", "bound", "of bound"], rows))
    for what, why in reasons.items():
        console.print(f"skipped {what}: {why}", highlight=False, soft_wrap=True)
    best = report.fastest
    if best is None:
        raise Unavailable("no configuration could run here; see the reasons above")
    console.print(f"fastest here: --backend {best.backend} --precision {best.precision} --batch-size {best.batch_size} "
                  f"({best.end_to_end:.1f} img/s end to end)", highlight=False)
