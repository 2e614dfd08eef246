"""``cxr age``: chest X-ray age of every film under the given paths, into a CSV or JSON Lines file."""

from __future__ import annotations

from pathlib import Path

import typer

from ..age import DEFAULT_AGE_MODEL, SALIENCY_METHODS, AgeEstimator, AgeTable, age_to_file
from ..errors import InvalidArgument
from . import _options
from ._batch import input_files, output_spec, progress_bar, report, warn_if_unproven
from ._output import speaks_flags


@speaks_flags({"id_column": "metadata_id", "age_column": "metadata_age"})
def age(
    paths: list[Path] = typer.Argument(..., help="Image files and/or folders (scanned recursively; DICOM found by content)."),
    model: str = typer.Option(DEFAULT_AGE_MODEL, "--model", "-m", help="Age model id or .safetensors file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output file; stdout when omitted."),
    fmt: str = typer.Option("csv", "--format", help="csv, jsonl or parquet (a folder of Parquet part files)."),
    tta: bool = typer.Option(False, "--tta", help="Blend 8 fixed corner-zoom views with the plain film (0.6/0.4) and report their sd."),
    metadata: Path | None = typer.Option(None, "--metadata", help="CSV with the true age of files (overrides the DICOM header)."),
    metadata_id: str = typer.Option("file", "--metadata-id", help="Column of --metadata naming the file (path or file name)."),
    metadata_age: str = typer.Option("age", "--metadata-age", help="Column of --metadata holding the age in years."),
    saliency: Path | None = typer.Option(None, "--saliency", help="Also write one saliency overlay per film into this folder."),
    saliency_method: str = typer.Option("saliency", "--saliency-method", help=f"{', '.join(SALIENCY_METHODS)} (saliency = input gradient, as CXR-Age)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Films per forward pass."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
    workers: int = _options.WORKERS,
    resume: bool = _options.RESUME,
    overwrite: bool = _options.OVERWRITE,
    dicom_sr: Path | None = _options.DICOM_SR,
    clean_film: bool = _options.CLEAN_FILM,
    fix_orientation: bool = _options.FIX_ORIENTATION,
    fix_mirror: bool = _options.FIX_MIRROR,
    orientation_model: str = _options.ORIENTATION_MODEL,
) -> None:
    """Estimate each film's chest X-ray age in years: one row per file, errors included.

    Columns: file, status, error, cxr_age, cxr_age_sd (with --tta), chronological_age and
    age_gap (= cxr_age - chronological_age) when --metadata or the DICOM header gives the age.
    Deterministic: the same file gives the same age every time. Exit 3 when some files failed.
    """
    if saliency_method not in SALIENCY_METHODS:
        raise InvalidArgument(f"--saliency-method must be one of {', '.join(SALIENCY_METHODS)}, got {saliency_method!r}")
    from ..dicom import Reports
    from ..explain import Heatmaps

    film = _options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, device)
    estimator = AgeEstimator(model, tta=tta, device=device, precision=precision, film=film)
    files = input_files(paths)
    warn_if_unproven(estimator.card)  # once the inputs are known good: a bad path stays one error line
    known = AgeTable(metadata, metadata_id, metadata_age) if metadata is not None else None
    maps = Heatmaps(saliency, saliency_method, "all", column="saliency") if saliency is not None else None
    with progress_bar("age", output) as bar:
        summary = age_to_file(files, estimator, output_spec(output, fmt, resume, overwrite), known=known,
                              saliency=maps, reports=Reports(dicom_sr) if dicom_sr is not None else None,
                              batch_size=batch_size, workers=workers, progress=bar)
    report(summary, output, f"model {estimator.card.name}{', TTA' if tta else ''}, {estimator.precision}")
