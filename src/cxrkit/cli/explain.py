"""``cxr explain``: where the model looks on one radiograph, as a PNG overlay (and the raw map)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import InvalidArgument, MissingFile
from ..models import DEFAULT_MODEL
from . import _options
from ._output import emit, err, speaks_flags

_METHOD_HELP = "gradcam, gradcam++, cam, saliency, ig, occlusion or lime; repeat with --grid to compare methods."


@speaks_flags()
def explain(
    image: Path = typer.Argument(..., help="A radiograph (DICOM, PNG, JPEG, TIFF)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model id, TorchXRayVision name or .safetensors file."),
    label: list[str] = typer.Option(["top"], "--label", "-l", help="Label name or 'top' (highest score); repeat with --grid."),
    method: list[str] = typer.Option(["gradcam"], "--method", help=_METHOD_HELP),
    output: Path | None = typer.Option(None, "--output", "-o", help="PNG to write; default IMAGE-STEM.METHOD.png (or .grid.png)."),
    raw: Path | None = typer.Option(None, "--raw", help="Also save the map itself as .npy (H, W), or (N, H, W) with --grid."),
    grid: bool = typer.Option(False, "--grid", help="One contact sheet: the image, then every label x method map side by side."),
    columns: int | None = typer.Option(None, "--columns", min=1, help="Tiles per row of the --grid sheet."),
    height: int | None = typer.Option(None, "--height", min=32, help="Output height in px (default: the image's own; 512 per grid tile)."),
    alpha: float = typer.Option(0.5, "--alpha", min=0.0, max=1.0, help="Opacity of the colour map at full strength."),
    layer: str | None = typer.Option(None, "--layer", help="Grad-CAM layer (a module name); default the last feature map."),
    samples: int = typer.Option(1000, "--samples", min=10, help="LIME: perturbed samples."),
    seed: int = typer.Option(0, "--seed", help="LIME: seed of superpixels and samples (same seed, same map)."),
    calibrate: bool = typer.Option(True, "--calibrate/--uncalibrated", help="Caption the calibrated probability, as cxr predict reports it."),
    clean_film: bool = _options.CLEAN_FILM,
    fix_orientation: bool = _options.FIX_ORIENTATION,
    fix_mirror: bool = _options.FIX_MIRROR,
    orientation_model: str = _options.ORIENTATION_MODEL,
    device: str = _options.DEVICE,
    fmt: str = _options.FORMAT,
) -> None:
    """Explain a prediction: a colour map over the radiograph, captioned with label and probability."""
    from .. import explain as xp  # imported here so `cxr --help` stays fast

    if not image.exists():
        raise MissingFile(f"no such file: {image}")
    if len(label) * len(method) > 1 and not grid:
        raise InvalidArgument("several labels or methods make several maps: add --grid to draw them on one contact sheet")
    per_method: dict[str, dict[str, Any]] = {
        "gradcam": {"layer": layer} if layer else {},
        "gradcam++": {"layer": layer} if layer else {},
        "lime": {"samples": samples, "seed": seed},
    }
    film = _options.film_steps(clean_film, fix_orientation, fix_mirror, orientation_model, device)
    result = xp.explain_to_files(
        model, image, labels=list(label), methods=list(method), options=per_method, output=output, raw=raw,
        grid=grid, columns=columns, height=height, alpha=alpha, calibrate=calibrate, device=device,
        film=film,
    )
    lines = [
        f"{m['label']}: p={m['score']:.3f} ({m['method']}, "
        + (f"peak at row {m['peak'][0]}, col {m['peak'][1]})" if m["peak"] else "empty map: no region raises this score)")
        for m in result["maps"]
    ]
    emit(result, fmt, "\n".join(lines + [f"-> {result['output']}" + (f", {raw}" if raw else "")]))
    if result["model"].endswith(".random"):
        err.print("note: this model has random weights; its maps explain nothing real", highlight=False)
