"""``cxr export``: write a model as one verified ONNX file that carries its model card."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InvalidArgument, OutputExists
from ._batch import input_files
from ._output import console, speaks_flags

FORMATS = ("onnx",)


def _default_films() -> list[Path]:
    """The example films of a source checkout (or of the current folder), for verification."""
    for folder in (Path("examples"), Path(__file__).resolve().parents[3] / "examples"):
        if folder.is_dir():
            return input_files([folder])
    raise InvalidArgument("no films to verify the export on: give a few real radiographs with --verify-on PATH")


@speaks_flags()
def export(
    model: str = typer.Argument(..., help="Model id, TorchXRayVision name or .safetensors file."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write, e.g. model.onnx."),
    fmt: str = typer.Option("onnx", "--format", help="Export format: onnx.", case_sensitive=False),
    verify_on: list[Path] | None = typer.Option(None, "--verify-on", help="Real films (files or folders) to check the export on; default: the examples/ films."),
    tolerance: float = typer.Option(1e-4, "--tolerance", min=0.0, help="Largest |difference in probability| from PyTorch (fp32) accepted."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output."),
) -> None:
    """Export MODEL to a single ONNX file with a dynamic batch axis and its model card as metadata.

    The file is checked against PyTorch on real films first and is not written when their
    probabilities differ by more than --tolerance (exit 1).
    """
    from ..predict.onnx_export import export_onnx

    if fmt.lower() not in FORMATS:
        raise InvalidArgument(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if output.exists() and not overwrite:
        raise OutputExists(output, f"{output} exists; pass --overwrite to replace it")
    films = input_files(verify_on) if verify_on else _default_films()
    result = export_onnx(model, output, films, tolerance=tolerance)
    size_mb = output.stat().st_size / 1e6
    console.print(f"exported {result.card.name} to {output} ({size_mb:.1f} MB, {result.seconds:.1f} s); "
                  f"max |Δprobability| vs PyTorch {result.max_abs_diff:.1e} on {result.images} films "
                  f"(tolerance {tolerance:g})", highlight=False, soft_wrap=True)
