"""``cxr predict``: score every image under the given paths into a CSV or JSON Lines file."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import CxrkitError
from ..models import DEFAULT_MODEL
from ..models.precision import precision_reason
from ..predict import Predictor, choose_backend, output_columns, run_files
from . import _options
from ._batch import add_maps, input_files, output_spec, progress_bar, report, warn_if_unproven, with_reports
from ._output import err, speaks_flags

if TYPE_CHECKING:  # Ray is imported only for --ray
    from ..predict.ray_run import RayEngine


@speaks_flags()
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
    from ..dicom import dicomweb_url

    server = dicomweb_url(paths[0]) if len(paths) == 1 else None
    if (study or series) and server is None:
        raise CxrkitError("--study and --series go with one DICOMweb server given as dicomweb+http://HOST/PATH")
    if dicom_overlay is not None and heatmaps is None:
        raise CxrkitError("--dicom-overlay needs --heatmaps: the overlay it stores is the top finding's map")
    if server is not None and (study is None or heatmaps is not None or ood or ray is not None):
        raise CxrkitError("a DICOMweb server needs --study, and runs without --heatmaps, --ood and --ray")
    engine, here = _ray_engine(ray, ray_actors, model, device, precision, calibrate, backend, ood or heatmaps is not None)
    film = _options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, here) if server is None else None
    predictor = Predictor(model, device=here, precision=precision if here == device else "fp32", calibrate=calibrate,
                          backend=backend, film=film)
    runtime = f"{predictor.backend.name} {predictor.precision if here == device else precision}"
    if server is not None and study is not None:  # (a server without a study was refused above)
        warn_if_unproven(predictor.card)
        return _predict_study(server, study, series, predictor, output, fmt, resume, overwrite, dicom_sr, batch_size,
                              workers)
    files = input_files(paths)
    warn_if_unproven(predictor.card)  # once the inputs are known good: a bad path stays one error line
    draw = None
    if heatmaps is not None:
        from ..explain import HeatmapWriter

        # the same film steps, so maps lie on the film as scored; every input named up front, so --resume keeps names
        draw = HeatmapWriter(predictor.model, heatmaps, method=heatmap_method, labels=heatmap_labels,
                             calibrate=calibrate, device=device, film=predictor.film, files=files, raw=heatmap_raw)
    card, calibrated = predictor.card, predictor.calibrated
    if ood:
        from .embed import with_ood

        predictor = with_ood(predictor, model)
    columns = output_columns(predictor) + (["heatmaps"] if draw is not None else [])
    complete = (lambda rows: add_maps(rows, draw, "heatmaps")) if draw is not None else None
    if dicom_overlay is not None:
        complete, overlay_column = _with_overlays(complete, dicom_overlay, card)
        columns += overlay_column
    complete, sr_column = with_reports(complete, dicom_sr, card, "findings", calibrated)
    columns += sr_column
    if verbose:
        err.print(f"precision: {precision_reason(precision, device)}", highlight=False)
        name, why = choose_backend(here, precision) if backend == "auto" else (backend, "as asked")
        why = why if name == runtime.split()[0] else "an exported ONNX file, or a graph that failed its check"
        err.print(f"backend: {runtime.split()[0]} ({why})", highlight=False)
    with progress_bar("predict", output) as bar:
        summary = run_files(files, predictor, output_spec(output, fmt, resume, overwrite, text=[*predictor.film.columns, "heatmaps", "dicom_overlay", *sr_column]), columns=columns,
                            batch_size=batch_size, workers=workers, complete=complete, progress=bar, engine=engine, scanned=True)
    where = f", Ray {ray}: {ray_actors} model actor(s) on {device}" if engine is not None else ""
    report(summary, output, f"model {predictor.card.name}, {runtime}{where}")


def _with_overlays(maps, folder: Path, card):
    """The heat-map callback followed by the Secondary Capture writer, and the column it adds."""
    from ..dicom.overlay import OVERLAY_COLUMN, OverlayWriter

    overlays = OverlayWriter(folder, card)

    def both(rows: list[dict]) -> None:
        maps(rows)
        overlays(rows)

    return both, [OVERLAY_COLUMN]


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


def _ray_engine(address: str | None, actors: int, model: str, device: str, precision: str, calibrate: bool,
                backend: str, extras: bool) -> tuple[RayEngine | None, str]:
    """The Ray engine --ray asks for (None without it), and the device of this process's predictor.

    With --device cuda the model actors build their own predictor on their GPU; this process
    (maybe GPU-less) keeps a CPU one, which prepares the films in the read tasks.
    """
    if address is None:
        return None, device
    from ..predict.ray_run import RayEngine, ray_available

    if not ray_available():
        raise CxrkitError("--ray needs Ray Data: pip install 'cxrkit[ray]'")
    if Path(address).exists() and "://" not in address:
        raise CxrkitError(f"--ray takes a cluster address (local, auto or ray://HEAD:10001), got the path {address!r}")
    if device == "cpu":
        return RayEngine(address=address, actors=actors, gpus=0.0), device
    if extras:
        raise CxrkitError("--ood and --heatmaps run with --ray only on --device cpu")
    build = partial(Predictor, model, device=device, precision=precision, calibrate=calibrate, backend=backend)
    return RayEngine(address=address, actors=actors, gpus=1.0, build=build), "cpu"
