"""``cxr predict``: score every image under the given paths into a CSV or JSON Lines file."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import CxrkitError
from ..models import DEFAULT_MODEL
from ..predict import PredictionSummary, PredictionWriter, Predictor, predict_files
from . import _options
from ._batch import add_maps, input_files, report, rows_into


def predict(
    paths: list[Path] = typer.Argument(..., help="Image files and/or folders (scanned recursively; DICOM found by content)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model id, TorchXRayVision name or .safetensors file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output file; stdout when omitted."),
    fmt: str = typer.Option("csv", "--format", help="csv or jsonl."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
    workers: int = typer.Option(1, "--workers", min=1, help="Decoding threads running ahead of the model."),
    resume: bool = typer.Option(False, "--resume", help="Skip files already in --output and append the rest."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output."),
    calibrate: bool = typer.Option(True, "--calibrate/--raw", help="Apply the model's operating thresholds (0.5 = threshold). A label without one (too few validation positives to choose it; `cxr models info` lists them as uncalibrated) keeps its raw probability."),
    heatmaps: Path | None = typer.Option(None, "--heatmaps", help="Also write one explanation overlay per image and label into this folder."),
    heatmap_method: str = typer.Option("gradcam", "--heatmap-method", help="gradcam, gradcam++, cam, saliency, ig, occlusion or lime."),
    heatmap_labels: str = typer.Option("top3", "--heatmap-labels", help="top3 (the row's 3 highest scores), all, or names separated by commas."),
    clean_film: bool = _options.CLEAN_FILM,
    fix_orientation: bool = _options.FIX_ORIENTATION,
    fix_mirror: bool = _options.FIX_MIRROR,
    orientation_model: str = _options.ORIENTATION_MODEL,
) -> None:
    """Predict the 18 standard pathologies for each image: one row per file, errors included.

    Exit code 0 when every file was scored, 3 when some files failed (their rows say why).
    """
    predictor = Predictor(model, device=device, precision=precision, calibrate=calibrate)
    files = input_files(paths)
    draw = None
    if heatmaps is not None:
        if fix_orientation or clean_film:
            raise CxrkitError("--heatmaps with --fix-orientation/--clean-film is not supported: the maps would be drawn "
                              "on the film as found, not as scored; run cxr convert first, then predict on its PNGs")
        from ..explain import HeatmapWriter

        draw = HeatmapWriter(predictor.model, heatmaps, method=heatmap_method, labels=heatmap_labels, calibrate=calibrate, device=device)
    predictor.film = _options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, device)
    columns = predictor.film.columns + predictor.columns
    columns += ["heatmaps"] if draw is not None else []
    summary = PredictionSummary()
    with PredictionWriter(output, columns, fmt, resume=resume, overwrite=overwrite) as writer:
        complete = (lambda rows: add_maps(rows, draw, "heatmaps")) if draw is not None else None
        with rows_into(writer, files, "predict", complete) as sink:
            for _ in predict_files(files, predictor, batch_size=batch_size, workers=workers, on_rows=sink,
                                   skip=writer.done, summary=summary):
                pass
    report(summary, output, f"model {predictor.card.name}")
