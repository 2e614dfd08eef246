"""``open_dataset``: one way in to every dataset source, so training, evaluation and the CLI agree.

A source is a registered public dataset (``nih``, ``chexpert``, ... see :func:`list_datasets`),
``csv`` (your images listed in a CSV, labels in columns) or ``folder`` (your images in one
sub-folder per label). Each caller used to pick among the three itself; a new kind of
source now needs one change here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .base import XrayDataset
from .custom import csv_dataset, folder_dataset
from .errors import DatasetError, LabelFileError
from .registry import get_dataset, list_datasets

__all__ = ["OWN_SOURCES", "open_dataset", "source_names"]

#: Sources that are not registered adapters: name -> (what it is, the label files it reads).
OWN_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "folder": ("your images, labels from sub-folder names", ()),
    "csv": ("your images, labels from a CSV", ("labels",)),
}


def source_names() -> list[str]:
    """Every name :func:`open_dataset` accepts: the registered datasets, then ``folder`` and ``csv``."""
    return [*list_datasets(), *OWN_SOURCES]


def open_dataset(
    source: str,
    root: str | os.PathLike | None = None,
    label_file: str | os.PathLike | None = None,
    *,
    files: Mapping[str, str | os.PathLike] | None = None,
    csv: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> XrayDataset:
    """The dataset of ``source`` under ``root`` (images) with its ``label_file``.

    ``files`` names a registered dataset's other label files (e.g. ``{"bbox": ...}``); ``csv``
    holds :func:`~cxrkit.datasets.csv_dataset` options (``path_column``, ``label_columns``,
    ...). Options that do not apply to the source are ignored. ``kwargs`` go to
    :class:`XrayDataset` (``views``, ``labels``, ``one_per_patient``, ``uncertain``, ``size``,
    ``on_error``, ...). Raises :class:`~cxrkit.datasets.UnknownDataset` for an unknown name.
    """
    if source == "folder":
        if root is None:
            raise DatasetError("the folder dataset needs its image folder (root), with one sub-folder per label")
        return folder_dataset(root, **kwargs)
    if source == "csv":
        if label_file is None:
            raise LabelFileError("labels", "the csv dataset needs its CSV file (label_file): one row per image")
        return csv_dataset(label_file, root, **dict(csv or {}), **kwargs)
    return get_dataset(source, root, label_file, files=files or None, **kwargs)
