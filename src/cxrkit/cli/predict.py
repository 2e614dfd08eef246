"""``cxr predict``: score every image under the given paths into a CSV or JSON Lines file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import InvalidArgument
from ..models import DEFAULT_MODEL
from ..models.precision import precision_reason
from ..predict import Predictor, choose_backend, predict_to_file, preparing_device, ray_engine
from . import _options
from ._batch import input_files, output_spec, progress_bar, report, warn_if_unproven
from ._output import err, speaks_flags

if TYPE_CHECKING:  # Ray is imported only for --ray
    pass


@speaks_flags({"overlays": "dicom_overlay", "reports": "dicom_sr"})
def predict(
    paths: list[str] = typer.Argument(..., help="Image files and/or folders (scanned recursively; DICOM found by content), or one DICOMweb server dicomweb+http://HOST/dicom-web with --study."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model id, TorchXRayVision name or .safetensors file."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output file; stdout when omitted."),
    fmt: str = typer.Option("csv", "--format", help="csv, jsonl or parquet (a folder of Parquet part files)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = _options.DEVICE,
    precision: str = _options.PRECISION,
    backend: str = typer.Option("auto", "--backend", help="Runtime of the forward pass: auto (the fastest here: torch on GPUs and for bf16, ONNX Runtime for fp32 on a CPU when installed), torch, or onnx (ONNX Runtime, fp32; pip install cxrkit[onnx])."),
    workers: int = _options.WORKERS,
    resume: bool = _options.RESUME,
    overwrite: bool = _options.OVERWRITE,
    calibrate: bool = typer.Option(True, "--calibrate/--raw", help="Apply the model's operating thresholds (0.5 = threshold). A label without one (too few validation positives to choose it; `cxr models info` lists them as uncalibrated) keeps its raw probability."),
    heatmaps: Path | None = typer.Option(None, "--heatmaps", help="Also write one explanation overlay per image and label into this folder."),
    heatmap_method: str = typer.Option("gradcam", "--heatmap-method", help="gradcam, gradcam++, cam, saliency, ig, occlusion or lime."),
    heatmap_labels: str = typer.Option("top3", "--heatmap-labels", help="top3 (the row's 3 highest scores), all, or names separated by commas."),
    heatmap_raw: bool = typer.Option(False, "--heatmap-raw", help="Also save each map itself as <image>.<label>.<method>.npy (float32, the film's pixels), e.g. for cxr evaluate --localisation."),
    dicom_sr: Path | None = _options.DICOM_SR,
    dicom_overlay: Path | None = typer.Option(None, "--dicom-overlay", help="With --heatmaps: also store the top finding's overlay as a DICOM Secondary Capture per DICOM input, in the film's study (pip install cxrkit[dicom]); the dicom_overlay column gives its path or why none."),
    study: str | None = typer.Option(None, "--study", help="With a dicomweb+http:// server: the Study Instance UID to score (QIDO-RS, WADO-RS); --dicom-sr stow stores the reports back (STOW-RS)."),
    series: str | None = typer.Option(None, "--series", help="With --study: only this Series Instance UID."),
    clean_film: bool = _options.CLEAN_FILM,
    fix_orientation: bool = _options.FIX_ORIENTATION,
    fix_mirror: bool = _options.FIX_MIRROR,
    orientation_model: str = _options.ORIENTATION_MODEL,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say which backend and precision run, and why."),
    ood: bool = typer.Option(False, "--ood", help="Add ood_score and ood (1 = unlike the model's training films) from the detector fitted with cxr ood-fit."),
    ray: str | None = typer.Option(None, "--ray", metavar="ADDRESS", help="Run on a Ray cluster (pip install cxrkit[ray]): local (start one on this machine), auto (the cluster this node is in) or ray://HEAD:10001. Same output file; see docs/scaling.md."),
    ray_actors: int = typer.Option(1, "--ray-actors", min=1, help="With --ray: copies of the model running at once (with --device cuda, one GPU each)."),
) -> None:
    """Predict the 18 standard pathologies for each image: one row per file, errors included.

    Exit code 0 when every file was scored, 3 when some files failed (their rows say why).
    """
    from ..dicom import Overlays, Reports, dicomweb_url
    from ..embed import Ood
    from ..explain import Heatmaps

    server = dicomweb_url(paths[0]) if len(paths) == 1 else None
    if (study or series) and server is None:
        raise InvalidArgument("--study and --series go with one DICOMweb server given as dicomweb+http://HOST/PATH")
    if server is not None and (study is None or heatmaps is not None or ood or ray is not None):
        raise InvalidArgument("a DICOMweb server needs --study, and runs without --heatmaps, --ood and --ray")
    here = preparing_device(ray, device)
    film = _options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, here)
    engine, predictor = ray_engine(ray, model, actors=ray_actors, device=device, precision=precision, calibrate=calibrate,
                                   backend=backend, ood=ood, heatmaps=heatmaps is not None, film=film)
    runtime = f"{predictor.backend.name} {predictor.precision if here == device else precision}"
    if server is not None and study is not None:  # (a server without a study was refused above)
        warn_if_unproven(predictor.card)
        return _predict_study(server, study, series, predictor, output, fmt, resume, overwrite, dicom_sr, batch_size,
                              workers)
    files = input_files(paths)
    warn_if_unproven(predictor.card)  # once the inputs are known good: a bad path stays one error line
    if verbose:
        err.print(f"precision: {precision_reason(precision, device)}", highlight=False)
        name, why = choose_backend(here, precision) if backend == "auto" else (backend, "as asked")
        why = why if name == runtime.split()[0] else "an exported ONNX file, or a graph that failed its check"
        err.print(f"backend: {runtime.split()[0]} ({why})", highlight=False)
    with progress_bar("predict", output) as bar:
        summary = predict_to_file(
            files, predictor, output_spec(output, fmt, resume, overwrite),
            heatmaps=Heatmaps(heatmaps, heatmap_method, heatmap_labels, heatmap_raw) if heatmaps is not None else None,
            ood=Ood(near=model) if ood else None, overlays=Overlays(dicom_overlay) if dicom_overlay is not None else None,
            reports=Reports(dicom_sr) if dicom_sr is not None else None, engine=engine, batch_size=batch_size,
            workers=workers, progress=bar)
    where = f", Ray {ray}: {ray_actors} model actor(s) on {device}" if engine is not None else ""
    report(summary, output, f"model {predictor.card.name}, {runtime}{where}")


def _predict_study(server: str, study: str, series: str | None, predictor: Predictor, output: Path | None, fmt: str,
                   resume: bool, overwrite: bool, dicom_sr: Path | None, batch_size: int, workers: int) -> None:
    """``cxr predict dicomweb+http://... --study UID``: the films are fetched into --dicom-sr (or a
    temporary folder with ``--dicom-sr stow``, the reports then stored back by STOW-RS)."""
    import tempfile

    from ..dicom import predict_study

    stow = dicom_sr is not None and str(dicom_sr) == "stow"
    with tempfile.TemporaryDirectory(prefix="cxr-dicomweb-") as temp:
        workdir = Path(temp) if stow or dicom_sr is None else dicom_sr
        with progress_bar("predict", output) as bar:
            summary, stored = predict_study(server, study, predictor, output_spec(output, fmt, resume, overwrite, text=["dicom_sr"]),
                                            workdir, series=series, calibrated=predictor.calibrated, stow=stow,
                                            batch_size=batch_size, workers=workers, progress=bar)
    where = f", {stored} report(s) stored back by STOW-RS" if stow else ""
    report(summary, output, f"model {predictor.card.name}, {predictor.precision}{where}")
