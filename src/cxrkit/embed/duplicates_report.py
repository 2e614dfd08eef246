"""What a duplicate pair means, and the report a person reads: split and group labels, CSV, thumbnails.

A pair of near-identical films matters when it crosses a boundary that should separate them:
two datasets that are meant to be independent, the train and test splits, or two patients
(one film filed under two patient ids: the labels of one leak to the other). The labels come
from a metadata CSV (one row per film: a column naming the film, a split column, a patient
column) or, for the split, from a folder named like a split in the film's path
(``train/``, ``val/``, ``test/`` ...), as most re-hosted collections are laid out.

The report folder holds ``pairs.csv`` (one row per pair), ``summary.json`` (counts) and
``thumbnails/`` (the two films of a pair side by side, with the similarity), so a person can
confirm by eye what the numbers claim.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from ..atomic import write_bytes_atomic, write_text_atomic
from ..errors import InvalidArgument, InvalidInput
from ..io import read_image
from .duplicates import DuplicateReport

__all__ = ["SPLIT_FOLDERS", "film_labels", "split_from_path", "write_report"]

#: folder names read as a split when no metadata names it (lower case)
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "valid", "valid": "valid", "validation": "valid",
                 "dev": "valid", "test": "test", "testing": "test"}
#: column names (lower case, without spaces and underscores) taken for ``group_by="patient"``
PATIENT_COLUMNS = ("patient", "patientid", "subjectid", "subject", "patientsid")


def split_from_path(name: str) -> str | None:
    """The split a film's folder names (the innermost folder called train/val/valid/validation/test...), else None."""
    for part in reversed(Path(name).parts[:-1]):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.lower())


def _key_column(frame: pd.DataFrame, files: Sequence[str]) -> tuple[str, bool]:
    """The column naming the films (full path or file name, whichever matches more), and whether it holds bare names."""
    full, base = set(files), {Path(f).name for f in files}
    best = (0, "", False)
    for column in frame.columns:
        values = set(frame[column].dropna().astype(str))
        best = max(best, (len(values & full), column, False), (len(values & base), column, True))
    if best[0] == 0:
        raise InvalidInput(f"no column of the metadata names the films (tried {', '.join(map(str, frame.columns))} "
                          "against their paths and file names)")
    return best[1], best[2]


def _column(frame: pd.DataFrame, wanted: str, what: str) -> str:
    if wanted in frame.columns:
        return wanted
    names = PATIENT_COLUMNS if wanted == "patient" else (_squash(wanted),)
    for column in frame.columns:
        if _squash(str(column)) in names:
            return str(column)
    raise InvalidInput(f"the `metadata` table has no {what} column {wanted!r}; columns: {', '.join(map(str, frame.columns))}")


def film_labels(files: Sequence[str], metadata: str | Path | None = None, *, split_column: str | None = None,
                group_by: str | None = None) -> tuple[Callable[[str], str | None], Callable[[str], str | None] | None]:
    """``(split_of, group_of)`` for the films: from the ``metadata`` CSV where it lists them, the split
    from the folder names otherwise; ``group_of`` is None when no ``group_by`` column is asked for."""
    if metadata is None:
        if group_by:
            raise InvalidArgument(f"`group_by` {group_by} needs a `metadata` table with a {group_by} column per film")
        return split_from_path, None
    frame = pd.read_csv(metadata, dtype=str)
    key, bare = _key_column(frame, files)
    frame = frame.drop_duplicates(key).set_index(key)
    split_col = _column(frame, split_column, "split") if split_column else ("split" if "split" in frame.columns else None)
    group_col = _column(frame, group_by, "group") if group_by else None

    def lookup(column: str | None) -> Callable[[str], str | None]:
        values = frame[column].to_dict() if column else {}

        def label(name: str) -> str | None:
            value = values.get(Path(name).name if bare else name)
            return None if value is None or pd.isna(value) else str(value)
        return label

    by_table = lookup(split_col)

    def split_of(name: str) -> str | None:
        return by_table(name) or split_from_path(name)
    return split_of, (lookup(group_col) if group_col else None)


def _thumbnail(path: str, height: int) -> np.ndarray:
    image = read_image(path)
    pixels = np.asarray(image.pixels, dtype=np.float32) * (255.0 / max(float(image.maxval), 1.0))
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    width = max(1, round(pixels.shape[1] * height / pixels.shape[0]))
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)


def _side_by_side(a: str, b: str, caption: str, height: int = 256) -> np.ndarray:
    left, right = _thumbnail(a, height), _thumbnail(b, height)
    gap = np.full((height, 8), 255, np.uint8)
    body = np.hstack([left, gap, right])
    band = np.full((24, body.shape[1]), 255, np.uint8)
    cv2.putText(band, caption, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
    return np.vstack([band, body])


def write_report(report: DuplicateReport, folder: str | Path, *, thumbnails: int = 50,
                 extra: dict[str, Any] | None = None) -> Path:
    """``pairs.csv``, ``summary.json`` and side-by-side thumbnails of the first ``thumbnails`` pairs under ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = report.pairs.copy()
    pairs["thumbnail"] = ""
    shown = folder / "thumbnails"
    for row in pairs.head(max(0, thumbnails)).itertuples():
        name = f"pair-{row.Index + 1:05d}.png"
        caption = f"{row.kind} cos {row.similarity:.3f} score {row.score:.3f}: {Path(row.file_a).name} | {Path(row.file_b).name}"
        try:
            picture = _side_by_side(row.file_a, row.file_b, caption)
        except (OSError, ValueError):  # a film of an index may have moved since it was embedded
            continue
        write_bytes_atomic(shown / name, cv2.imencode(".png", picture)[1].tobytes(), durable=False)
        pairs.loc[row.Index, "thumbnail"] = f"thumbnails/{name}"
    write_text_atomic(folder / "pairs.csv", pairs.to_csv(index=False))
    summary = {"films": report.films, "hashed": report.hashed, "threshold": report.threshold, **report.summary,
               **(extra or {})}
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2) + "\n")
    return folder
