"""One dataset class for every source; each source is a frozen :class:`DatasetSpec`.

The spec says *what* a source is (its label files, how to read them into a standard
frame, its label table, its uncertainty convention); :class:`XrayDataset` owns *how*
every source is served: view filtering, one image per patient, the label matrix,
``__getitem__`` and error handling. A new source is a table and either a column map or a
loader function (see :mod:`cxrkit.datasets.spec`).

A loader returns a :class:`pandas.DataFrame` with one row per image and the columns
``path`` (image path relative to the root), ``patient_id``, ``view``, ``age``, ``sex``,
``row`` (the row of the label file, for error messages) and the label information:
``tokens`` (a tuple of original labels, or ``None`` when the row has none) for
token-style sources, or one column per original label for column-style sources.
Optional columns (``split``, ``study_id``, ...) are kept and exposed through ``frame``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidArgument
from .errors import LabelFileError, MissingImage
from .harmonise import harmonise, token_columns
from .localisation import localiser_for
from .spec import DatasetSpec, LabelFile, read_table, require_columns

if TYPE_CHECKING:
    from ..io import XrayImage

__all__ = ["LabelFile", "DatasetSpec", "XrayDataset", "read_table", "require_columns"]

log = logging.getLogger(__name__)

STANDARD_COLUMNS = ("path", "patient_id", "view", "age", "sex", "row")


def _resolve_files(spec: DatasetSpec, root: Path | None, label_file: Path | None,
                   files: Mapping[str, str | os.PathLike] | None) -> dict[str, Path | None]:
    given = {k: Path(v) for k, v in (files or {}).items()}
    known = {f.key for f in spec.files}
    unknown = set(given) - known
    if unknown:
        raise InvalidArgument(f"{spec.name}: unknown file key(s) {sorted(unknown)}; expected {sorted(known)}")
    if label_file is not None:
        given[spec.files[0].key] = Path(label_file)
    out: dict[str, Path | None] = {}
    for f in spec.files:
        path = given.get(f.key)
        if path is None and f.default and root is not None:
            path = next((root / n for n in (f.default, f.default + ".gz") if (root / n).exists()), None)
        if path is None and f.required:
            hint = f" (default {f.default!r} under the root)" if f.default else ""
            raise LabelFileError(f.key, f"{spec.name} needs its {f.key} file{hint}: "
                                        f"pass label_file= or files={{'{f.key}': ...}}")
        if path is not None and not path.exists():
            raise LabelFileError(path, f"{spec.name} {f.key} file does not exist")
        out[f.key] = path
    return out


class XrayDataset:
    """A chest X-ray dataset: label matrix, metadata frame and images behind one interface.

    Samples are dicts: ``image`` (1xHxW float32 ndarray in [-1024, 1024]), ``labels``
    (float32 over :attr:`label_names`, NaN = unknown) and ``meta`` (patient_id, view, age,
    sex, path, dataset, index, row). Pass ``size`` to centre-crop and resize at load time.
    ``on_error="skip"`` replaces an unreadable or missing image by the next readable one
    and logs a counted warning (for long training runs); the default raises.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        root: str | os.PathLike | None = None,
        label_file: str | os.PathLike | None = None,
        *,
        files: Mapping[str, str | os.PathLike] | None = None,
        views: Sequence[str] | str | None = None,
        one_per_patient: bool = False,
        seed: int | None = None,
        uncertain: str = "nan",
        labels: Sequence[str] | None = None,
        size: int | None = None,
        crop: bool = True,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        on_error: str = "raise",
        check_files: bool = False,
    ):
        if on_error not in ("raise", "skip"):
            raise InvalidArgument(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.spec = spec
        self.root = Path(root) if root is not None else None
        self.files = _resolve_files(spec, self.root, Path(label_file) if label_file else None, files)
        self.size, self.crop, self.transform, self.on_error = size, crop, transform, on_error
        #: ``(pixels, maxval) -> (1, S, S)`` model input (a model card's ``transforms()``); when set it makes
        #: the image in place of ``size`` and ``crop`` (boxes and masks still follow those)
        self.input_transform: Callable[[np.ndarray, float], np.ndarray] | None = None
        self.uncertain = uncertain
        self.skipped = 0
        self.localisation = localiser_for(spec, self.files)  # boxes/masks on samples, when declared

        frame = spec.read(self.files)
        for col in STANDARD_COLUMNS:
            if col not in frame.columns:
                frame[col] = np.arange(len(frame)) if col == "row" else (np.nan if col == "age" else "")
        frame["view"] = frame["view"].astype(object).fillna("UNKNOWN").astype(str).replace("", "UNKNOWN")
        frame["patient_id"] = frame["patient_id"].astype(str)
        frame["sex"] = frame["sex"].astype(object).fillna("").astype(str)
        frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype(float)
        frame = frame.reset_index(drop=True)

        if isinstance(views, str):
            views = [v.strip() for v in views.split(",") if v.strip()]
        if views and "*" not in views:
            frame = frame[frame["view"].isin(list(views))].reset_index(drop=True)
        self.views = tuple(views) if views and "*" not in views else None

        matrix, names = self._label_matrix(frame, labels)
        if one_per_patient:
            keep = one_row_per_patient(frame["patient_id"].to_numpy(), seed)
            frame, matrix = frame.iloc[keep].reset_index(drop=True), matrix[keep]
        self.frame = frame
        self.labels = matrix
        self.label_names = names
        if check_files:
            self.check_files()

    # -- labels -----------------------------------------------------------------------------
    def _label_matrix(self, frame: pd.DataFrame, labels: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
        spec = self.spec
        table = dict(spec.table)
        if spec.kind == "tokens":
            tokens = list(frame["tokens"])
            vocab = set(table)
            if spec.passthrough:
                seen = sorted({t for row in tokens if row for t in row} - vocab - set(spec.ignore_tokens))
                table.update({t: t for t in seen})
                vocab = set(table)
            columns = token_columns(tokens, vocab)
        else:
            columns = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float32) for c in table}
        no_finding = None
        if spec.no_finding is not None:
            no_finding = pd.to_numeric(frame[spec.no_finding], errors="coerce").to_numpy() == 1
        return harmonise(columns, table, labels, uncertain=self.uncertain, no_finding=no_finding,
                         no_finding_exempt=spec.no_finding_exempt)

    # -- views of the same dataset ------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> XrayDataset:
        """A dataset over the given rows (sharing spec and settings), e.g. one split."""
        indices = np.asarray(indices, dtype=int)
        out = copy.copy(self)
        out.frame = self.frame.iloc[indices].reset_index(drop=True)
        out.labels = self.labels[indices]
        return out

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def patients(self) -> np.ndarray:
        return self.frame["patient_id"].to_numpy()

    def image_path(self, index: int) -> Path:
        rel = str(self.frame["path"].iat[index])
        if self.root is None:
            return Path(rel)
        path = self.root / rel
        if not path.exists() and (self.root / Path(rel).name).exists():
            return self.root / Path(rel).name  # a release unpacked flat, without its sub-folders
        return path

    def check_files(self) -> list[int]:
        """Rows whose image file is missing; raises on the first unless ``on_error='skip'``."""
        missing = [i for i in range(len(self)) if not self.image_path(i).exists()]
        if missing and self.on_error == "raise":
            i = missing[0]
            raise MissingImage(self.image_path(i), int(self.frame["row"].iat[i]), self.name)
        if missing:
            log.warning("%s: %d of %d images are missing under %s", self.name, len(missing), len(self), self.root)
        return missing

    def meta(self, index: int) -> dict[str, Any]:
        row = self.frame.iloc[index]
        age = float(row["age"])
        return {
            "patient_id": str(row["patient_id"]),
            "view": str(row["view"]),
            "age": age,
            "sex": str(row["sex"]),
            "path": str(self.image_path(index)),
            "dataset": self.name,
            "index": int(index),
            "row": int(row["row"]),
        }

    # -- images -------------------------------------------------------------------------------
    def read_film(self, index: int) -> XrayImage:
        """The decoded film of one row, as stored; typed errors name the row."""
        from ..io import read_image

        if self.root is None:
            raise MissingImage(self.frame["path"].iat[index], int(self.frame["row"].iat[index]), self.name)
        path = self.image_path(index)
        if not path.exists():
            raise MissingImage(path, int(self.frame["row"].iat[index]), self.name)
        return read_image(path)

    def load_image(self, index: int) -> np.ndarray:
        """The image of one row as (1, H, W) float32 in [-1024, 1024]; typed errors name the row."""
        return self._model_image(self.read_film(index))

    def _model_image(self, film: XrayImage) -> np.ndarray:
        from .. import preprocess

        if self.input_transform is not None:
            return self.input_transform(film.pixels, film.maxval)
        if self.size:
            return preprocess.model_input(film.pixels, film.maxval, self.size, self.crop)
        return preprocess.normalize(film.pixels, film.maxval)[None]

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from ..errors import CxrkitError, UnreadableImage

        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.name} of {len(self)} images")
        tries = 0
        while True:
            try:
                film = self.read_film(index)
                break
            except CxrkitError as exc:
                if self.on_error == "raise" or tries >= len(self):
                    if isinstance(exc, UnreadableImage):
                        row = int(self.frame["row"].iat[index])
                        raise type(exc)(exc.path, f"{exc.reason} (row {row} of dataset {self.name!r})") from exc
                    raise
                self.skipped += 1
                tries += 1
                log.warning("%s: skipping row %s (%s); %d skipped so far", self.name,
                            self.frame["row"].iat[index], exc, self.skipped)
                index = (index + 1) % len(self)
        sample = {"labels": self.labels[index].copy(), "meta": self.meta(index)}
        if self.localisation is None:
            sample["image"] = self._model_image(film)
        else:
            # boxes and masks are moved with the stored pixels, which are normalised last, as
            # model_input does: the same image as without them, at the same cost
            from ..preprocess import normalize

            sample["image"] = film.pixels
            sample = self.localisation.attach(sample, self.frame.iloc[index], self.size, self.crop)
            sample["image"] = normalize(sample["image"], film.maxval)[None]
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def __repr__(self) -> str:
        return f"XrayDataset({self.name!r}, images={len(self)}, labels={len(self.label_names)}, views={self.views})"


def one_row_per_patient(patients: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Indices of one real row per patient: the first in file order, or a seeded random one.

    Picking whole rows (not ``groupby().first()``, which takes each column's first
    non-null value and can splice labels of different images) keeps image and labels
    together.
    """
    patients = np.asarray(patients)
    if seed is None:
        _, first = np.unique(patients, return_index=True)
        return np.sort(first)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    _, first = np.unique(patients[order], return_index=True)
    return np.sort(order[first])
