"""Overlays and contact sheets: radiograph + colour map + caption, drawn with OpenCV into PNG files.

OpenCV is already a core dependency and keeps no global drawing state (matplotlib's
pyplot does), so rendering is safe in threads and servers. Unsigned maps use the jet
colour map; LIME's signed maps use lime's convention, green for regions that support
the label and red for regions against it. Colour opacity follows the map's strength,
so the cut-away margins and weak areas show the plain radiograph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..atomic import write_bytes_atomic
from .api import load_image
from .errors import ExplainError
from .heatmap import Heatmap

__all__ = ["render_overlay", "save_overlay", "contact_sheet", "save_png", "caption"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def caption(heatmap: Heatmap) -> str:
    """``"Effusion  p=0.734  gradcam"``: what a reader needs to interpret the colours."""
    kind = "score" if heatmap.meta.get("task") == "regression" else "p"
    return f"{heatmap.label}  {kind}={heatmap.score:.3f}  {heatmap.method}"


def _grey(pixels: np.ndarray, maxval: float) -> np.ndarray:
    scaled = np.clip(np.asarray(pixels, dtype=np.float32) * (255.0 / float(maxval)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(scaled, cv2.COLOR_GRAY2BGR)


def _colour(array: np.ndarray, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """BGR colours and per-pixel strength in [0, 1] for a heatmap."""
    if signed:
        strength = np.clip(np.abs(array), 0, 1)
        colours = np.zeros(array.shape + (3,), dtype=np.float32)
        colours[array > 0] = (0, 200, 0)  # green: supports the label
        colours[array < 0] = (0, 0, 230)  # red: speaks against it
        return colours, strength
    heat = np.clip(np.nan_to_num(array, nan=0.0), 0, 1)
    colours = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET).astype(np.float32)
    return colours, heat


def _fit(image: np.ndarray, height: int | None) -> np.ndarray:
    if height is None or image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    method = cv2.INTER_AREA if height < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=method)


def _with_caption(image: np.ndarray, text: str) -> np.ndarray:
    width = image.shape[1]
    scale = max(0.35, min(1.2, width / 900))
    thickness = 1 if scale < 0.8 else 2
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    while tw > width - 8 and scale > 0.3:
        scale *= 0.9
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    strip = np.zeros((th + base + 12, width, 3), dtype=np.uint8)
    cv2.putText(strip, text, (4, th + 6), _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return np.vstack([image, strip])


def render_overlay(
    pixels: np.ndarray, maxval: float, heatmap: Heatmap, *, alpha: float = 0.5, height: int | None = None,
    with_caption: bool = True,
) -> np.ndarray:
    """BGR uint8 image: the radiograph with ``heatmap`` blended on top and a caption strip below.

    ``height`` rescales the result (a 3,000 px film makes a 3,000 px PNG otherwise).
    """
    if heatmap.array.shape != tuple(pixels.shape[:2]):
        raise ExplainError(
            f"heatmap is {heatmap.array.shape} but the image is {tuple(pixels.shape[:2])}: "
            "overlay the map on the image it was computed from"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ExplainError(f"alpha must lie in [0, 1], got {alpha}")
    base = _grey(pixels, maxval).astype(np.float32)
    colours, strength = _colour(heatmap.array, heatmap.signed)
    weight = (alpha * strength)[..., None]
    out = _fit(np.clip(base * (1 - weight) + colours * weight, 0, 255).astype(np.uint8), height)
    return _with_caption(out, caption(heatmap)) if with_caption else out


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a BGR image as PNG, creating the folder; atomically (temporary file, then rename),
    so a run killed mid-write leaves no truncated map under the final name."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ExplainError(f"could not encode a PNG for {path}")
    return write_bytes_atomic(path, data.tobytes())


def save_overlay(image: Any, heatmap: Heatmap, path: str | Path, **options: Any) -> Path:
    """Render :func:`render_overlay` for ``image`` (path, XrayImage or array) and write it to ``path``."""
    pixels, maxval, _ = load_image(image, options.pop("maxval", None))
    return save_png(render_overlay(pixels, maxval, heatmap, **options), path)


def contact_sheet(
    image: Any, heatmaps: Sequence[Heatmap], *, height: int = 512, columns: int | None = None,
    alpha: float = 0.5, include_image: bool = True, maxval: float | None = None, gap: int = 6,
) -> np.ndarray:
    """One image's maps side by side (several labels and/or methods), each tile captioned.

    The first tile is the plain radiograph (``include_image``), so readers see what the
    colour hides. ``columns`` wraps the tiles into rows (default: one row).
    """
    if not heatmaps:
        raise ExplainError("a contact sheet needs at least one heatmap")
    pixels, maxval, source = load_image(image, maxval)
    tiles = []
    if include_image:
        plain = _fit(_grey(pixels, maxval), height)
        tiles.append(_with_caption(plain, Path(source).name if source else "image"))
    tiles += [render_overlay(pixels, maxval, h, alpha=alpha, height=height) for h in heatmaps]
    tile_h = max(t.shape[0] for t in tiles)
    tile_w = max(t.shape[1] for t in tiles)
    columns = columns or len(tiles)
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * tile_h + (rows - 1) * gap, columns * tile_w + (columns - 1) * gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = r * (tile_h + gap), c * (tile_w + gap)
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return sheet
