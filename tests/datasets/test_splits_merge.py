"""Patient-level splits (official and seeded) never leak a patient; merging aligns labels by name."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.datasets import get_dataset
from cxrkit.datasets.merge import merge
from cxrkit.datasets.splits import assert_no_leakage, official_split, patient_split, split_dataset

nan = np.nan


def _patients(split):
    return {name: set(part.patients) for name, part in split.items()}


def _assert_disjoint(split):
    sets = list(_patients(split).values())
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not sets[i] & sets[j]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_seeded_split_on_many_images_per_patient(seed):
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(300), rng.integers(1, 30, size=300)).astype(str)
    parts = patient_split(patients, {"train": 0.7, "valid": 0.15, "test": 0.15}, seed=seed)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(patients)))  # every row exactly once
    owners = {}
    for name, rows in parts.items():
        for p in set(patients[rows]):
            assert owners.setdefault(p, name) == name
    share = len(parts["train"]) / len(patients)
    assert 0.62 < share < 0.78
    again = patient_split(patients, {"train": 0.7, "valid": 0.15, "test": 0.15}, seed=seed)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)  # deterministic


def test_seeded_split_real_nih_subset(nih_subset):
    images, labels = nih_subset
    ds = get_dataset("nih", images, labels)
    split = split_dataset(ds, {"train": 0.8, "valid": 0.1, "test": 0.1}, seed=0)
    assert sum(len(p) for p in split.values()) == 1200
    _assert_disjoint(split)
    assert_no_leakage(split)
    assert len(split["train"]) > 850 and len(split["test"]) > 60
    sample = split["test"][0]  # a split is a dataset: images load
    assert sample["image"].shape[0] == 1 and sample["meta"]["patient_id"] in _patients(split)["test"]


def test_official_split_nih_lists(tmp_path, metadata):
    full = __import__("pandas").read_csv(metadata["nih"], usecols=["Image Index", "Patient ID"])
    # NIH's official lists are patient-disjoint; build them the way NIH did (by patient) for 30% of patients.
    test_patients = set(full["Patient ID"].unique()[::3])
    is_test = full["Patient ID"].isin(test_patients)
    (tmp_path / "test_list.txt").write_text("\n".join(full.loc[is_test, "Image Index"]))
    (tmp_path / "train_val_list.txt").write_text("\n".join(full.loc[~is_test, "Image Index"]))
    ds = get_dataset("nih", None, metadata["nih"], files={"test_list": tmp_path / "test_list.txt",
                                                          "train_val_list": tmp_path / "train_val_list.txt"})
    split = official_split(ds)
    assert set(split) == {"train", "test"} and len(split["test"]) == int(is_test.sum())
    assert_no_leakage(split)


def test_official_split_google_and_chexpert_paths(real):
    split = official_split(real("nih-google"))
    assert {k: len(v) for k, v in split.items()} == {"test": 1962, "valid": 2414}
    chex = split_dataset(real("chexpert"), official=True)
    assert set(chex) == {"train"} and len(chex["train"]) == 223414


def test_leakage_is_detected():
    from types import SimpleNamespace

    with pytest.raises(AssertionError, match="patient 7"):
        assert_no_leakage({"a": SimpleNamespace(patients=np.array(["7", "1"])),
                           "b": SimpleNamespace(patients=np.array(["7"]))})


def test_no_official_split_is_a_clear_error(nih_subset):
    ds = get_dataset("nih", *nih_subset)
    with pytest.raises(ValueError, match="no official split"):
        official_split(ds)


def test_merge_union_and_intersection(nih_subset, tmp_path):
    images, labels = nih_subset
    nih = get_dataset("nih", images, labels)
    names = nih.frame["path"].iloc[:3].tolist()
    # a second source over the same real images: a user CSV with one standard and one extra label
    csv = tmp_path / "mine.csv"
    csv.write_text("path,pid,Effusion,Tube\n" + "".join(f"{n},q{i},{i % 2},1\n" for i, n in enumerate(names)))
    from cxrkit.datasets import csv_dataset

    mine = csv_dataset(csv, images, patient_column="pid", name="mine")
    merged = merge([nih, mine])
    assert len(merged) == 1203
    assert merged.label_names == nih.label_names + ("Tube",)
    eff, tube = merged.label_names.index("Effusion"), merged.label_names.index("Tube")
    np.testing.assert_array_equal(merged.labels[:1200, : len(nih.label_names)], nih.labels)
    assert np.isnan(merged.labels[:1200, tube]).all()  # NIH says nothing about tubes
    np.testing.assert_array_equal(merged.labels[1200:, eff], [0, 1, 0])
    assert np.isnan(merged.labels[1200:, merged.label_names.index("Mass")]).all()
    s = merged[1201]
    assert s["meta"]["dataset"] == "mine" and s["meta"]["index"] == 1201 and s["labels"][tube] == 1
    np.testing.assert_array_equal(s["image"], nih[1]["image"])
    assert merged[5]["meta"]["dataset"] == "nih"
    inter = merge([nih, mine], labels="intersection")
    assert inter.label_names == ("Effusion",) and inter.labels.shape == (1203, 1)
    # patients of different sources never collide, and merged splits stay patient-disjoint
    split = split_dataset(merged, {"train": 0.5, "test": 0.5}, seed=1)
    assert_no_leakage(split)
    assert sum(len(p) for p in split.values()) == 1203
    assert split["test"][0]["image"].ndim == 3
