"""``cxr predict``: score every image under the given paths into a CSV or JSON Lines file."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import CxrkitError
from ..models import DEFAULT_MODEL
from ..predict import PredictionSummary, PredictionWriter, Predictor, iter_image_files, predict_files
from . import _options
from ._output import EXIT_PARTIAL, err


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
    calibrate: bool = typer.Option(True, "--calibrate/--raw", help="Apply the model's operating thresholds (0.5 = threshold)."),
    heatmaps: Path | None = typer.Option(None, "--heatmaps", help="Also write one explanation overlay per image and label into this folder."),
    heatmap_method: str = typer.Option("gradcam", "--heatmap-method", help="gradcam, gradcam++, cam, saliency, ig, occlusion or lime."),
    heatmap_labels: str = typer.Option("top3", "--heatmap-labels", help="top3 (the row's 3 highest scores), all, or names separated by commas."),
) -> None:
    """Predict the 18 standard pathologies for each image: one row per file, errors included.

    Exit code 0 when every file was scored, 3 when some files failed (their rows say why).
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CxrkitError(f"no such file or folder: {', '.join(missing)}")
    predictor = Predictor(model, device=device, precision=precision, calibrate=calibrate)
    files = list(iter_image_files(paths))
    summary = PredictionSummary()
    draw = None
    if heatmaps is not None:
        from ..explain import HeatmapWriter

        draw = HeatmapWriter(predictor.model, heatmaps, method=heatmap_method, labels=heatmap_labels, calibrate=calibrate, device=device)
    columns = predictor.columns + (["heatmaps"] if draw is not None else [])
    with PredictionWriter(output, columns, fmt, resume=resume, overwrite=overwrite) as writer:
        todo = sum(1 for f in files if str(f) not in writer.done)
        show = sys.stderr.isatty()
        with Progress(
            TextColumn("[bold]predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err, disable=not show, transient=False,
        ) as progress:
            task = progress.add_task("predict", total=todo)

            def on_rows(rows: list[dict]) -> None:
                if draw is not None:
                    add_heatmaps(rows, draw)
                writer.write(rows)
                progress.advance(task, len(rows))

            for _ in predict_files(
                files, predictor, batch_size=batch_size, workers=workers,
                on_rows=on_rows, skip=writer.done, summary=summary,
            ):
                pass
    where = f" -> {output}" if output else ""
    err.print(
        f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} already done "
        f"({summary.images_per_second:.1f} img/s, model {predictor.card.name}){where}",
        highlight=False,
    )
    for name, error in summary.errors[:5]:
        err.print(f"  failed: {name}: {error}", highlight=False, markup=False)
    if summary.failed > 5:
        err.print(f"  ... and {summary.failed - 5} more (see the error column)", highlight=False)
    if summary.failed:
        raise typer.Exit(EXIT_PARTIAL)


def add_heatmaps(rows: list[dict], draw) -> None:
    """Fill each ok row's ``heatmaps`` column (``;``-joined PNG paths); a drawing failure is noted, not fatal."""
    for row in rows:
        row["heatmaps"] = ""
        if row["status"] != "ok":
            continue
        try:
            row["heatmaps"] = ";".join(str(p) for p in draw(row["file"], row))
        except Exception as exc:  # one failed map must not stop a batch of thousands
            reason = str(exc) if isinstance(exc, CxrkitError) else f"unexpected {type(exc).__name__}: {exc}"
            row["error"] = f"heatmap failed: {reason}"
