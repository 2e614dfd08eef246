"""Fixtures of the dataset tests: real label files (loaded once per session) and tiny crafted sources."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

METADATA_FILES = {
    "nih": "Data_Entry_2017_v2020.csv.gz",
    "bbox": "BBox_List_2017.csv.gz",
    "nih-google": "google2019_nih-chest-xray-labels.csv.gz",
    "chexpert": "chexpert_train.csv.gz",
    "padchest": "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz",
    "rsna": "kaggle_stage_2_train_labels.csv.zip",
    "rsna-headers": "kaggle_stage_2_train_images_dicom_headers.csv.gz",
    "siim": "siim-pneumothorax-train-rle.csv.gz",
    "vindr": "vinbigdata-train.csv.gz",
    "openi": "NLMCXR_reports.tgz",
    "openi-dicom": "nlmcxr_dicom_metadata.csv.gz",
    "openi-tsne": "nlmcxr_tsne_pa.csv.gz",
}


@pytest.fixture(scope="session")
def metadata(shared_data) -> dict[str, Path]:
    return {k: shared_data / "metadata" / v for k, v in METADATA_FILES.items()}


@pytest.fixture(scope="session")
def nih_subset(shared_data) -> tuple[Path, Path]:
    """(image folder, label file) of the 1,200 real NIH images."""
    return shared_data / "nih" / "images", shared_data / "nih" / "Data_Entry_2017_v2020.csv"


def _once(cache: dict, key: str, build):
    if key not in cache:
        cache[key] = build()
    return cache[key]


@pytest.fixture(scope="session")
def real(metadata):
    """Lazily built, cached cxrkit datasets over the real label files (all views, all rows)."""
    from cxrkit.datasets import get_dataset

    cache: dict = {}
    m = metadata
    builders = {
        "nih": lambda: get_dataset("nih", None, m["nih"], files={"bbox": m["bbox"]}),
        "nih-google": lambda: get_dataset("nih-google", None, m["nih-google"]),
        "chexpert": lambda: get_dataset("chexpert", None, m["chexpert"]),
        "padchest": lambda: get_dataset("padchest", None, m["padchest"]),
        "rsna": lambda: get_dataset("rsna", None, m["rsna"], files={"headers": m["rsna-headers"]}),
        "siim": lambda: get_dataset("siim", None, m["siim"]),
        "vindr": lambda: get_dataset("vindr", None, m["vindr"]),
        "openi": lambda: get_dataset("openi", None, m["openi"],
                                     files={"dicom_metadata": m["openi-dicom"], "tsne_view": m["openi-tsne"]}),
    }
    return lambda name: _once(cache, name, builders[name])


@pytest.fixture(scope="session")
def raw(metadata):
    """Lazily read, cached raw label tables (pandas only: the independent side of the count tests)."""
    cache: dict = {}
    m = metadata
    builders = {
        "nih": lambda: pd.read_csv(m["nih"]),
        "nih-google": lambda: pd.read_csv(m["nih-google"]),
        "chexpert": lambda: pd.read_csv(m["chexpert"]),
        "padchest": lambda: pd.read_csv(m["padchest"], low_memory=False, usecols=["ImageID", "Labels", "Projection"]),
        "rsna": lambda: pd.read_csv(m["rsna"]),
        "siim": lambda: pd.read_csv(m["siim"]),
        "vindr": lambda: pd.read_csv(m["vindr"]),
    }
    return lambda name: _once(cache, name, builders[name])


@pytest.fixture(scope="session")
def xrv_datasets(metadata, tmp_path_factory):
    """Lazily built torchxrayvision datasets over the same files (all views, every image kept)."""
    xrv = pytest.importorskip("torchxrayvision")
    img = tmp_path_factory.mktemp("xrv_dummy_images")  # xrv does not read images in __init__
    m = metadata
    d = xrv.datasets
    builders = {
        "nih": lambda: d.NIH_Dataset(str(img), str(m["nih"]), str(m["bbox"]), views="*", unique_patients=False),
        "nih-google": lambda: d.NIH_Google_Dataset(str(img), str(m["nih-google"]), views="*", unique_patients=False),
        "chexpert": lambda: d.CheX_Dataset(str(img), str(m["chexpert"]), views="*", unique_patients=False),
        "padchest": lambda: d.PC_Dataset(str(img), str(m["padchest"]), views="*", unique_patients=False),
        "rsna": lambda: d.RSNA_Pneumonia_Dataset(str(img), str(m["rsna"]), str(m["rsna-headers"]), views="*"),
        "siim": lambda: d.SIIM_Pneumothorax_Dataset(str(img), str(m["siim"])),
        "vindr": lambda: d.VinDr_Dataset(str(img), str(m["vindr"])),
        "openi": lambda: d.Openi_Dataset(str(img), str(m["openi"]), str(m["openi-dicom"]), str(m["openi-tsne"]),
                                         views="*", unique_patients=False),
    }

    def build(name):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = np.random.get_state()  # xrv seeds numpy's global RNG in every constructor
            try:
                return builders[name]()
            finally:
                np.random.set_state(state)

    cache: dict = {}
    return lambda name: _once(cache, name, lambda: build(name))
