"""Boxes and masks of the datasets that have them, declared as data and attached to samples.

A source with localisation declares a :class:`Localisation` on its spec: which of its
files holds the annotations, the columns, the coordinate convention and the pixel grid the
coordinates refer to. The dataset then reads that file once and every sample gains

- ``boxes``: float32 ``(N, 4)`` ``x0, y0, x1, y1`` in the sample image's pixels, with
  ``box_labels`` (N standard label names, harmonised with the source's own label table:
  a box whose label maps to two standard labels appears once under each);
- ``mask``: uint8 ``(H, W)``, the union of the image's masks (SIIM).

Coordinates are rescaled from the grid they were drawn on to the image file as stored, then
moved with the image by the dataset's crop and resize. An image without annotations gets
no box (``(0, 4)``) or an all-zero mask: for NIH this means "none drawn" (boxes exist for
880 of 112,120 images), not "normal".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from .errors import LabelFileError
from .harmonise import harmonise, token_columns
from .spec import DatasetSpec, read_table, require_columns

__all__ = ["Localisation", "Localiser", "read_annotations", "rle_decode", "localiser_for", "box_label_table"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Localisation:
    """Where a source's boxes or masks are and how to read them.

    ``file``: the spec's file key holding the annotations (one row per box or mask).
    ``image``: its column naming the image; ``match``: the frame column it is compared with
    (``"path"`` compares file names, ``"image_id"`` the id column of challenge sources).
    ``label``: the column of the original label, or ``constant_label`` when the file has none
    (RSNA's boxes all mark its ``Target``). ``renames`` fixes original spellings before the
    spec's label table applies (NIH's boxes say "Infiltrate").
    ``boxes``: four column names, read as ``format`` ``"xywh"`` or ``"xyxy"``; or ``rle``: the
    column of SIIM run-length strings. ``grid``: ``(height, width)`` of the pixel grid the
    coordinates refer to; ``None`` means the image file as released (VinDr's DICOMs).
    """

    file: str = "labels"
    image: str
    match: str = "image_id"
    label: str | None = None
    constant_label: str | None = None
    renames: Mapping[str, str] = field(default_factory=dict)
    boxes: tuple[str, str, str, str] | None = None
    format: str = "xywh"
    rle: str | None = None
    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if (self.boxes is None) == (self.rle is None):
            raise InvalidArgument("a Localisation gives either boxes (four columns) or rle (one column)")
        if self.format not in ("xywh", "xyxy"):
            raise InvalidArgument(f"box format must be 'xywh' or 'xyxy', got {self.format!r}")
        if self.rle is not None and self.grid is None:
            raise InvalidArgument("run-length masks need the grid (height, width) they were encoded on")
        if (self.label is None) == (self.constant_label is None):
            raise InvalidArgument("give the label column or a constant_label, not both or neither")


def rle_decode(rle: str, height: int = 1024, width: int = 1024) -> np.ndarray:
    """Decode a SIIM run-length string into an (H, W) uint8 mask.

    SIIM's encoding is *relative* and *column-major*: pairs ``offset length`` where each
    offset counts from the end of the previous run (not from pixel 0, as in most Kaggle
    RLEs), over pixels numbered down the first column, then the next. ``-1`` means no mask.
    """
    rle = str(rle).strip()
    mask = np.zeros(height * width, dtype=np.uint8)
    if rle not in ("-1", ""):
        values = np.asarray(rle.split(), dtype=np.int64)
        if len(values) % 2:
            raise InvalidArgument(f"a run-length string has pairs of numbers; got {len(values)} numbers")
        offsets, lengths = values[0::2], values[1::2]
        starts = np.cumsum(offsets) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        if len(starts) and (starts[-1] + lengths[-1] > mask.size or (offsets < 0).any() or (lengths < 0).any()):
            raise InvalidArgument(f"run-length string runs past a {height}x{width} mask")
        for start, length in zip(starts, lengths, strict=True):
            mask[start:start + length] = 1
    return mask.reshape(width, height).T


def box_label_table(spec: DatasetSpec, originals: Sequence[str]) -> list[tuple[str, ...]]:
    """The standard labels of each original box label, through the spec's own label table.

    Runs :func:`~cxrkit.datasets.harmonise.harmonise` on one row per box, so a box label is
    mapped exactly as an image label of the same source would be; unmapped ones get ``()``.
    """
    if not len(originals):
        return []
    table = dict(spec.table)
    columns = token_columns([(o,) for o in originals], table)
    matrix, names = harmonise(columns, table)
    return [tuple(names[j] for j in np.flatnonzero(row == 1)) for row in matrix]


def _localisation_of(spec: DatasetSpec) -> Localisation:
    if spec.localisation is None:
        raise InvalidArgument(f"{spec.name} has no boxes or masks")
    return spec.localisation


def read_annotations(spec: DatasetSpec, path: Path) -> pd.DataFrame:
    """The annotation file of a source as rows ``key, label, x0, y0, x1, y1`` (boxes, in the
    declared grid) or ``key, label, rle``; one row per standard label of each annotation.
    Rows without coordinates (VinDr's "No finding", RSNA's negatives, SIIM's ``-1``) are dropped."""
    loc = _localisation_of(spec)
    raw = read_table(Path(path))
    raw.columns = [str(c).strip() for c in raw.columns]
    wanted = [loc.image, *([loc.label] if loc.label else []), *(loc.boxes or ()), *([loc.rle] if loc.rle else [])]
    require_columns(raw, wanted, path)
    if loc.boxes is not None:
        coords = raw[list(loc.boxes)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        keep = ~np.isnan(coords).any(axis=1)
    else:
        keep = raw[loc.rle].astype(str).str.strip().ne("-1").to_numpy()
    raw = raw[keep].reset_index(drop=True)
    originals = (raw[loc.label].astype(str).str.strip().replace(dict(loc.renames)) if loc.label
                 else pd.Series(loc.constant_label, index=raw.index))
    unique = list(dict.fromkeys(originals))  # harmonise each spelling once, not each of 36k VinDr rows
    targets = originals.map(dict(zip(unique, box_label_table(spec, unique), strict=True))).tolist()
    unmapped = sorted({o for o, t in zip(originals, targets, strict=True) if not t})
    if unmapped:
        log.warning("%s: annotations labelled %s have no standard label and are left out", spec.name, unmapped)
    out = pd.DataFrame({"key": raw[loc.image].astype(str).str.strip(), "label": targets})
    if loc.boxes is not None:
        xyxy = coords[keep].copy()
        if loc.format == "xywh":
            xyxy[:, 2:] += xyxy[:, :2]
        out[["x0", "y0", "x1", "y1"]] = xyxy
    else:
        out["rle"] = raw[loc.rle].astype(str).str.strip()
    return out.explode("label").dropna(subset=["label"]).reset_index(drop=True)


class Localiser:
    """The annotations of one dataset, indexed by image, attached to samples by :meth:`attach`."""

    def __init__(self, spec: DatasetSpec, path: Path):
        self.spec, self.loc, self.path = spec, _localisation_of(spec), Path(path)
        table = read_annotations(spec, self.path)
        self.count = len(table)
        self._rows: dict[str, pd.DataFrame] = {str(k): g for k, g in table.groupby("key", sort=False)}

    def key(self, row: pd.Series) -> str:
        """The annotation key of a frame row: its file name, or its id column."""
        if self.loc.match == "path":
            return Path(str(row["path"])).name
        return str(row[self.loc.match])

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def keys(self) -> list[str]:
        return list(self._rows)

    def targets(self, key: str, shape: Sequence[int]) -> dict[str, Any]:
        """``boxes``/``box_labels`` or ``mask`` of one image, in the pixels of an image of ``shape`` (H, W)."""
        from ..preprocess.geometry import as_boxes, resize_mask, scale_boxes

        rows = self._rows.get(key)
        height, width = int(shape[0]), int(shape[1])
        grid = self.loc.grid or (height, width)
        if self.loc.rle is not None:
            mask = np.zeros(grid, dtype=np.uint8)
            for rle in [] if rows is None else rows["rle"]:
                try:
                    mask |= rle_decode(rle, grid[0], grid[1])
                except ValueError as exc:
                    raise LabelFileError(self.path, f"image {key}: {exc}") from None
            return {"mask": resize_mask(mask, (height, width))}
        if rows is None:
            return {"boxes": as_boxes(None), "box_labels": ()}
        boxes = scale_boxes(rows[["x0", "y0", "x1", "y1"]].to_numpy(np.float32), grid, (height, width))
        return {"boxes": boxes, "box_labels": tuple(rows["label"])}

    def attach(self, sample: dict[str, Any], row: pd.Series, size: int | None = None,
               crop: bool = True) -> dict[str, Any]:
        """Add the targets of ``row`` to a sample whose image is still as stored, then crop and
        resize image, boxes and mask together when the dataset asks for a ``size``."""
        from ..preprocess.transforms import center_crop_sample, resize_sample

        out = dict(sample)
        out.update(self.targets(self.key(row), np.shape(sample["image"])[-2:]))
        if size:
            if crop:
                out = center_crop_sample(out)
            out = resize_sample(out, size)
            out["image"] = np.ascontiguousarray(out["image"], dtype=np.float32)
        return out


def localiser_for(spec: DatasetSpec, files: Mapping[str, Path | None]) -> Localiser | None:
    """The localiser of a dataset, or None when its spec declares none or its file was not given."""
    if spec.localisation is None:
        return None
    path = files.get(spec.localisation.file)
    return Localiser(spec, path) if path is not None else None
