"""Localisation of explanation maps against expert boxes or masks: pointing game and IoU.

- **Pointing game** (Zhang et al. 2016): a map *hits* when its peak falls inside one of the
  expert's boxes for that image and label, grown by ``tolerance`` pixels (15 px in the
  paper). It needs no threshold, so every method is scored alike. The hit rate comes with a
  Wilson 95 % interval: with the few dozen boxes public sets give per label, the interval is
  wide and belongs next to the number.
- **IoU**: the map thresholded at ``threshold`` times its own maximum, against the union of
  the boxes (or the mask).
- **Random-map baseline**: the same scores for maps of uniform noise on a 7 x 7 grid,
  upsampled to the film (the resolution of a DenseNet's last feature map at 224 px), averaged
  over seeded draws. A method is localising only where it beats this.

The per-map functions live in :mod:`cxrkit.preprocess.geometry`, shared with explanations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..datasets import get_spec
from ..datasets.localisation import read_annotations
from ..datasets.spec import read_table, require_columns
from ..preprocess.geometry import (
    boxes_to_mask,
    iou,
    map_peak,
    point_in_boxes,
    scale_boxes,
    xywh_to_xyxy,
)
from .errors import InputFileError

__all__ = ["read_boxes", "pointing_hit", "map_iou", "random_map", "score_maps", "summarise", "LocalisationReport",
           "localisation_report", "LOCALISATION_COLUMNS"]

LOCALISATION_COLUMNS = ("method", "label", "n", "hits", "pointing", "pointing_ci_low", "pointing_ci_high", "iou",
                        "random_pointing", "random_iou")


def read_boxes(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """Boxes as rows ``image, label, x0, y0, x1, y1, grid_h, grid_w`` (grid: the pixel grid the
    coordinates refer to; NaN = the film's own).

    ``dataset`` names a registered source whose annotation file this is (``nih`` for
    ``BBox_List_2017.csv``, ``rsna``, ``vindr``); NIH's file is recognised by its header.
    Otherwise a plain CSV with ``image, label`` and ``x0, y0, x1, y1`` or ``x, y, w, h``, in
    the film's pixels unless ``width, height`` columns give the grid they were drawn on.
    """
    path = Path(path)
    if dataset is None and "Bbox [x" in read_table(path, nrows=0).columns:
        dataset = "nih"
    if dataset is not None:
        spec = get_spec(dataset)
        if spec.localisation is None or spec.localisation.boxes is None:
            raise InputFileError(path, f"dataset {dataset!r} has no boxes; give a plain CSV (image, label, x0, y0, x1, y1)")
        table = read_annotations(spec, path).rename(columns={"key": "image"})
        grid = spec.localisation.grid or (np.nan, np.nan)
        table["grid_h"], table["grid_w"] = float(grid[0]), float(grid[1])
        return table
    raw = read_table(path)
    corners = [c for c in ("x0", "y0", "x1", "y1") if c in raw.columns]
    names = ["x0", "y0", "x1", "y1"] if len(corners) == 4 else ["x", "y", "w", "h"]
    require_columns(raw, ["image", "label", *names], path)
    coords = raw[names].to_numpy(np.float32)
    out = pd.DataFrame(coords if names[0] == "x0" else xywh_to_xyxy(coords), columns=["x0", "y0", "x1", "y1"])
    out.insert(0, "label", raw["label"].astype(str).str.strip())
    out.insert(0, "image", raw["image"].astype(str).str.strip())
    out["grid_h"] = pd.to_numeric(raw["height"], errors="coerce") if "height" in raw.columns else np.nan
    out["grid_w"] = pd.to_numeric(raw["width"], errors="coerce") if "width" in raw.columns else np.nan
    return out


def pointing_hit(heatmap: np.ndarray, boxes: object = None, mask: np.ndarray | None = None,
                 tolerance: float = 15.0) -> bool:
    """Whether the map's peak lies in one of ``boxes`` (grown by ``tolerance``) or on ``mask``."""
    peak = map_peak(heatmap)
    if mask is not None:
        if tolerance > 0:
            grow = round(tolerance)
            mask = cv2.dilate(np.asarray(mask, np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        return bool(np.asarray(mask)[peak])
    return point_in_boxes(peak, boxes, tolerance)


def map_iou(heatmap: np.ndarray, boxes: object = None, mask: np.ndarray | None = None,
            threshold: float = 0.5) -> float:
    """IoU of the map above ``threshold`` x its maximum with the boxes' union (or the mask)."""
    heat = np.asarray(heatmap, dtype=np.float32)
    region = mask if mask is not None else boxes_to_mask(boxes, heat.shape)
    top = float(np.nanmax(heat)) if heat.size else 0.0
    if top <= 0:
        return 0.0
    return iou(heat >= threshold * top, region)


def random_map(shape: Sequence[int], rng: np.random.Generator, grid: int = 7) -> np.ndarray:
    """Uniform noise on a ``grid`` x ``grid`` lattice, bilinearly upsampled to ``shape`` (H, W)."""
    coarse = rng.random((grid, grid), dtype=np.float32)
    return cv2.resize(coarse, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def _norm(text: str) -> str:
    """File-name form of an image stem or label for matching (case and punctuation ignored)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _find_maps(folder: Path) -> dict[tuple[str, str], dict[str, Path]]:
    """``(image stem, label) -> {method: .npy}`` for maps named ``<stem>.<label>.<method>.npy``."""
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(folder.glob("*.npy")):
        parts = path.name[: -len(".npy")].rsplit(".", 2)
        if len(parts) == 3:
            found.setdefault((_norm(parts[0]), _norm(parts[1])), {})[parts[2]] = path
    return found


def score_maps(boxes: pd.DataFrame, folder: str | Path, *, tolerance: float = 15.0, threshold: float = 0.5,
               repeats: int = 20, seed: int = 0) -> pd.DataFrame:
    """One row per image x label x method: hit, IoU and their random-map means. Only images
    with at least one map in ``folder`` are scored; a boxed label of such an image without a
    map gets a row with an empty ``method`` and NaN scores (counted as missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "heatmap folder does not exist (write one with predict's raw heatmaps)")
    maps = _find_maps(folder)
    rng = np.random.default_rng(seed)
    stems = {stem for stem, _ in maps}  # images of this run; boxes of other images are not scored
    rows = []
    for (image, label), group in boxes.groupby(["image", "label"], sort=True):
        if _norm(Path(str(image)).stem) not in stems:
            continue
        found = maps.get((_norm(Path(str(image)).stem), _norm(str(label))), {})
        if not found:
            rows.append({"image": image, "label": label, "method": "", "hit": np.nan, "iou": np.nan,
                         "random_hit": np.nan, "random_iou": np.nan})
            continue
        for method, path in sorted(found.items()):
            heat = np.load(path, allow_pickle=False)
            grid = group[["grid_h", "grid_w"]].iloc[0].to_numpy(float)
            xyxy = group[["x0", "y0", "x1", "y1"]].to_numpy(np.float32)
            if not np.isnan(grid).any():
                xyxy = scale_boxes(xyxy, grid, heat.shape)
            draws = [random_map(heat.shape, rng) for _ in range(repeats)]
            rows.append({
                "image": image, "label": label, "method": method,
                "hit": float(pointing_hit(heat, xyxy, tolerance=tolerance)),
                "iou": map_iou(heat, xyxy, threshold=threshold),
                "random_hit": float(np.mean([pointing_hit(d, xyxy, tolerance=tolerance) for d in draws])),
                "random_iou": float(np.mean([map_iou(d, xyxy, threshold=threshold) for d in draws])),
            })
    return pd.DataFrame(rows, columns=["image", "label", "method", "hit", "iou", "random_hit", "random_iou"])


def _wilson(hits: int, n: int) -> tuple[float, float]:
    if not n:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(hits, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def summarise(items: pd.DataFrame) -> pd.DataFrame:
    """Per method and label (and ``all`` labels): pointing rate with Wilson CI, mean IoU, baselines."""
    scored = items[items["method"] != ""]
    rows = []
    for method, by_method in scored.groupby("method", sort=True):
        groups = [*by_method.groupby("label", sort=True), ("all", by_method)]
        for label, g in groups:
            hits, n = int(g["hit"].sum()), len(g)
            low, high = _wilson(hits, n)
            rows.append({"method": method, "label": label, "n": n, "hits": hits, "pointing": hits / n,
                         "pointing_ci_low": low, "pointing_ci_high": high, "iou": float(g["iou"].mean()),
                         "random_pointing": float(g["random_hit"].mean()), "random_iou": float(g["random_iou"].mean())})
    return pd.DataFrame(rows, columns=list(LOCALISATION_COLUMNS))


@dataclass
class LocalisationReport:
    """``items`` (one row per image x label x method), ``table`` (:func:`summarise`), ``missing`` maps."""

    items: pd.DataFrame
    table: pd.DataFrame

    @property
    def missing(self) -> int:
        return int((self.items["method"] == "").sum())

    def write(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "localisation.csv", folder / "localisation_items.csv"]
        self.table.to_csv(paths[0], index=False)
        self.items.to_csv(paths[1], index=False)
        return paths


def localisation_report(boxes_file: str | Path, heatmaps: str | Path, *, dataset: str | None = None,
                        tolerance: float = 15.0, threshold: float = 0.5, repeats: int = 20,
                        seed: int = 0) -> LocalisationReport:
    """Read the boxes, score every matching raw map in ``heatmaps``, and summarise."""
    items = score_maps(read_boxes(boxes_file, dataset), heatmaps, tolerance=tolerance, threshold=threshold,
                       repeats=repeats, seed=seed)
    return LocalisationReport(items, summarise(items))
