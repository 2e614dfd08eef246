"""``cxr convert``: DICOM/TIFF/PNG/JPEG films to 8-bit PNGs, folder to folder, with a manifest."""

from __future__ import annotations

from pathlib import Path

import typer

from ..convert import Converter, output_paths
from ..errors import InvalidArgument
from ..predict import run_files
from . import _options
from ._batch import input_files, output_spec, progress_bar, report
from ._output import speaks_flags


@speaks_flags()
def convert(
    inputs: list[Path] = typer.Argument(..., help="Image files and/or folders (scanned recursively; DICOM found by content)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the PNGs (the input folder layout is kept)."),
    clean: bool = typer.Option(True, "--clean/--no-clean", help="CXR-Age film clean-up: trim uniform borders, auto-level. --no-clean keeps the display levels."),
    size: int = typer.Option(512, "--size", min=0, help="Shortest side of the PNG in pixels (0 keeps the size)."),
    trim_fuzz: float = typer.Option(0.0, "--trim-fuzz", min=0.0, max=1.0, help="Border pixels within this fraction of white of the corner colour are trimmed too (0 = exact, as ImageMagick)."),
    fix_orientation: bool = _options.FIX_ORIENTATION,
    fix_mirror: bool = _options.FIX_MIRROR,
    orientation_model: str = _options.ORIENTATION_MODEL,
    manifest: Path | None = typer.Option(None, "--manifest", help="Manifest CSV (default OUTPUT/convert.csv)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Files converted at once (threads)."),
    device: str = _options.DEVICE,
    resume: bool = typer.Option(False, "--resume", help="Skip files already in the manifest and append the rest."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start a new manifest (existing PNGs are replaced)."),
) -> None:
    """Convert films to 8-bit PNGs (shortest side 512 by default), one manifest row per input file.

    Exit code 0 when every file was converted, 3 when some failed (their rows say why).
    """
    files = input_files(inputs)
    out_dir = output.resolve()
    if any(f.resolve().is_relative_to(out_dir) for f in files):
        raise InvalidArgument(f"--output {output} already holds some of the input images (it lies inside an input "
                          "folder); choose an output folder outside the inputs")
    steps = _options.film_steps(clean, fix_orientation, fix_mirror, orientation_model, device,
                                shortest=size or None, fuzz=trim_fuzz)
    converter = Converter(output_paths(files, inputs, output), steps)
    manifest = manifest or output / "convert.csv"
    with progress_bar("convert", manifest) as bar:
        summary = run_files(files, converter, output_spec(manifest, "csv", resume, overwrite), workers=workers,
                            progress=bar, scanned=True)
    report(summary, manifest, "clean-up" if clean else "no clean-up")
