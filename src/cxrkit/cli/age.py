"""``cxr age``: chest X-ray age of every film under the given paths, into a CSV or JSON Lines file."""

from __future__ import annotations

from pathlib import Path

import typer

from ..age import DEFAULT_AGE_MODEL, AgeEstimator, AgeTable
from ..errors import CxrkitError
from ..predict import output_columns, run_files
from . import _options
from ._batch import add_maps, input_files, output_spec, progress_bar, report, warn_if_unproven, with_reports
from ._output import speaks_flags

SALIENCY_METHODS = ("saliency", "gradcam", "gradcam++", "ig")


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
        raise CxrkitError(f"--saliency-method must be one of {', '.join(SALIENCY_METHODS)}, got {saliency_method!r}")
    if saliency is not None and (fix_orientation or clean_film):
        raise CxrkitError("--saliency with --fix-orientation/--clean-film is not supported: the maps would be drawn on "
                          "the film as found, not as scored; run cxr convert first, then cxr age on its PNGs")
    estimator = AgeEstimator(model, tta=tta, device=device, precision=precision,
                             film=_options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, device))
    files = input_files(paths)
    warn_if_unproven(estimator.card)  # once the inputs are known good: a bad path stays one error line
    known = AgeTable(metadata, metadata_id, metadata_age) if metadata is not None else None
    draw = None
    if saliency is not None:
        from ..explain import HeatmapWriter

        draw = HeatmapWriter(estimator.model, saliency, method=saliency_method, labels="all", device=device)
    columns = output_columns(estimator) + ["chronological_age", "age_gap"] + (["saliency"] if draw is not None else [])

    def complete(rows: list[dict]) -> None:
        for row in rows:
            if known is not None and (listed := known.get(row["file"])) is not None:
                row["chronological_age"] = listed
            true_age = row.get("chronological_age")
            row["age_gap"] = row["cxr_age"] - true_age if row["status"] == "ok" and true_age is not None else None
        if draw is not None:
            add_maps(rows, draw, "saliency")

    write_all, sr_column = with_reports(complete, dicom_sr, estimator.card, "age")
    with progress_bar("age", output) as bar:
        summary = run_files(files, estimator, output_spec(output, fmt, resume, overwrite, text=[*estimator.film.columns, "saliency", *sr_column]), columns=columns + sr_column,
                            batch_size=batch_size, workers=workers, complete=write_all, progress=bar, scanned=True)
    report(summary, output, f"model {estimator.card.name}{', TTA' if tta else ''}, {estimator.precision}")
