"""What an evaluation reads and how it scores, as small frozen values.

An evaluation has many knobs (label file format, foreign prediction columns, thresholds,
bootstrap, subgroups, the shortcut probe). Grouping them by what they describe keeps each
entry point of :mod:`cxrkit.evaluate.run` to a short signature, lets a notebook build a spec
once and reuse it, and checks every value where it is made, so the CLI only parses flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InvalidArgument
from .loaders import LabelTable, label_formats, load_labels, load_predictions
from .model_eval import PROBE_INPUTS

__all__ = ["PredictionsFile", "LabelFile", "DatasetSplit", "Scoring", "Subgroups"]

@dataclass(frozen=True)
class PredictionsFile:
    """A predictions CSV(.gz): cxrkit's own, or a foreign one read by its image id column and the
    prefix of its score columns (stripped)."""

    path: Path
    id_column: str | None = None
    prefix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def read(self) -> pd.DataFrame:
        return load_predictions(self.path, id_column=self.id_column, prefix=self.prefix)


@dataclass(frozen=True)
class LabelFile:
    """A label file: a dataset's own (``dataset="nih"``, ``"chexpert"``...), or a plain CSV
    (``"csv"``, whose image id and patient columns may be named). ``None`` recognises an NIH
    file by its header and reads anything else as a plain CSV."""

    path: Path
    dataset: str | None = None
    id_column: str | None = None
    patient_column: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.dataset is not None and self.dataset not in label_formats():
            raise InvalidArgument(f"`dataset` must be csv or a registered dataset "
                                  f"({', '.join(label_formats())}), got {self.dataset!r}")
        if self.dataset not in (None, "csv") and (self.id_column or self.patient_column):
            raise InvalidArgument(f"{self.dataset} label files have fixed columns; an image id or patient "
                                  "column is named only for a plain labels CSV (`dataset` csv)")

    def read(self) -> LabelTable:
        options = {k: v for k, v in (("id_column", self.id_column), ("patient_column", self.patient_column)) if v}
        return load_labels(self.path, self.dataset, **options)


@dataclass(frozen=True)
class DatasetSplit:
    """The images of one split of a dataset, read by its adapter: the official split where the
    dataset defines one, else a seeded 80/20 patient split (``seed``, as ``data.split_seed`` in
    training; it equals a training run's split only with the same data, ratios, seed and exclusions)."""

    dataset: str | None
    labels: Path
    images: Path | None
    split: str = "valid"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset in (None, "csv") or self.images is None:
            raise InvalidArgument("a model is evaluated on a dataset split: name its `dataset` (an adapter, "
                                  "e.g. nih) and the `images` folder to pick the split's images from")
        object.__setattr__(self, "labels", Path(self.labels))
        object.__setattr__(self, "images", Path(self.images))


@dataclass(frozen=True)
class Scoring:
    """How the scores are turned into metrics: which labels, the operating point (chosen on these
    data by ``threshold_method``, or read from a validation run's metrics.csv), the bootstrap
    replicates of the AUC interval and their seed, and the task (``multiclass``: softmax accuracy)."""

    label_names: tuple[str, ...] | None = None
    threshold_method: str = "youden"
    thresholds_from: Path | None = None
    n_bootstrap: int = 1000
    seed: int = 0
    task: str = "multilabel"

    def __post_init__(self) -> None:
        if self.label_names is not None:
            object.__setattr__(self, "label_names", tuple(self.label_names) or None)
        if self.n_bootstrap < 0:
            raise InvalidArgument(f"`n_bootstrap` must be 0 or more, got {self.n_bootstrap}")


@dataclass(frozen=True)
class Subgroups:
    """Per-group AUCs by ``group_by`` columns (of the label file, its metadata, or the ``metadata``
    sidecar CSVs matched by file name), ``age_bands`` cutting an age column at these edges; with
    ``shortcut_check``, a probe of whether the first group can be read off ``probe_input``.
    No ``group_by`` column: no subgroup analysis (``metadata`` is still named in the report)."""

    group_by: tuple[str, ...] = ()
    metadata: tuple[Path, ...] = ()
    age_bands: tuple[float, ...] | None = None
    shortcut_check: bool = False
    probe_input: str = "features"

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_by", tuple(self.group_by))
        object.__setattr__(self, "metadata", tuple(Path(m) for m in self.metadata))
        bands = None if self.age_bands is None else tuple(float(b) for b in self.age_bands)
        object.__setattr__(self, "age_bands", bands)
        if bands is not None and (not bands or any(b <= a for a, b in zip(bands, bands[1:], strict=False))):
            raise InvalidArgument(f"`age_bands` must be increasing numbers like 0,40,60,80, got "
                                  f"{','.join(f'{b:g}' for b in bands)}")
        if self.probe_input not in PROBE_INPUTS:
            raise InvalidArgument(f"`probe_input` must be features or pixels, got {self.probe_input!r}")
        if self.shortcut_check and not self.group_by:
            raise InvalidArgument("`shortcut_check` needs `group_by`: the group the probe should try to recognise")

