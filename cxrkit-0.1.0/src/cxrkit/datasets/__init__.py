"""Public chest X-ray datasets (and your own) behind one interface, labels harmonised exactly.

>>> from cxrkit.datasets import open_dataset
>>> nih = open_dataset("nih", "images/", "Data_Entry_2017_v2020.csv", views="PA")
>>> sample = nih[0]          # {"image": (1,H,W) float32, "labels": (14,), "meta": {...}}

Shards for training live in :mod:`cxrkit.datasets.shards` (imported on demand: it needs torch).
"""

from .base import DatasetSpec, LabelFile, XrayDataset
from .custom import csv_dataset, folder_dataset
from .errors import (
    DatasetError,
    LabelFileError,
    MissingImage,
    UnknownDataset,
)
from .harmonise import harmonise, token_columns
from .merge import MergedDataset, merge
from .open import OWN_SOURCES, open_dataset, source_names
from .registry import (
    get_dataset,
    get_spec,
    list_datasets,
    register_dataset,
)
from .splits import (
    assert_no_leakage,
    official_split,
    patient_split,
    split_dataset,
)
from .summary import label_counts, summarize

__all__ = [
    "DatasetSpec", "LabelFile", "XrayDataset", "csv_dataset", "folder_dataset", "DatasetError", "LabelFileError",
    "MissingImage", "UnknownDataset", "harmonise", "token_columns", "get_dataset", "get_spec", "list_datasets",
    "register_dataset", "MergedDataset", "merge", "assert_no_leakage", "official_split", "patient_split",
    "split_dataset", "label_counts", "summarize", "open_dataset", "source_names", "OWN_SOURCES",
]
