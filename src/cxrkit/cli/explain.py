"""``cxr explain``: where the model looks on one radiograph, as a PNG overlay (and the raw map)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from ..errors import CxrkitError
from ..models import DEFAULT_MODEL, create
from . import _options
from ._output import emit, err

_METHOD_HELP = "gradcam, gradcam++, cam, saliency, ig, occlusion or lime; repeat with --grid to compare methods."


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
    device: str = _options.DEVICE,
    fmt: str = _options.FORMAT,
) -> None:
    """Explain a prediction: a colour map over the radiograph, captioned with label and probability."""
    from .. import explain as xp  # imported here so `cxr --help` stays fast

    if not image.exists():
        raise CxrkitError(f"no such file: {image}")
    unknown = [m for m in method if m not in xp.METHODS]
    if unknown:
        raise CxrkitError(f"unknown method {unknown[0]!r}; choose one of {', '.join(xp.METHODS)}")
    if len(label) * len(method) > 1 and not grid:
        raise CxrkitError("several labels or methods make several maps: add --grid to draw them on one contact sheet")
    per_method: dict[str, dict[str, Any]] = {
        "gradcam": {"layer": layer} if layer else {},
        "gradcam++": {"layer": layer} if layer else {},
        "lime": {"samples": samples, "seed": seed},
    }
    labels: list[str | int] = list(label)
    net = create(model)
    heatmaps = xp.explain_grid(net, image, labels, list(method), per_method, calibrate=calibrate, device=device)
    if grid:
        sheet = xp.contact_sheet(image, heatmaps, height=height or 512, columns=columns, alpha=alpha)
        target = output or Path(f"{image.stem}.grid.png")
    else:
        sheet = xp.render_overlay(*xp.load_image(image)[:2], heatmaps[0], alpha=alpha, height=height)
        target = output or Path(f"{image.stem}.{method[0].replace('+', 'p')}.png")
    xp.save_png(sheet, target)
    if raw is not None:
        arrays = [h.array for h in heatmaps]
        raw.parent.mkdir(parents=True, exist_ok=True)
        np.save(raw, arrays[0] if len(arrays) == 1 else np.stack(arrays))
    maps = [
        {"label": h.label, "method": h.method, "score": h.score, "peak": list(h.peak()) if h.has_evidence else None,
         "seconds": round(h.meta["seconds"], 3)}
        for h in heatmaps
    ]
    result = {"image": str(image), "model": net.card.name, "output": str(target), "raw": str(raw) if raw else None, "maps": maps}
    lines = [
        f"{m['label']}: p={m['score']:.3f} ({m['method']}, "
        + (f"peak at row {m['peak'][0]}, col {m['peak'][1]})" if m["peak"] else "empty map: no region raises this score)")
        for m in maps
    ]
    emit(result, fmt, "\n".join(lines + [f"-> {target}" + (f", {raw}" if raw else "")]))
    if net.card.name.endswith(".random"):
        err.print("note: this model has random weights; its maps explain nothing real", highlight=False)
