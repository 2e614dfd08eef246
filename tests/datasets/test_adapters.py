"""Every adapter on tiny crafted label files (no ../shared needed), plus the bad-input contract."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from cxrkit.datasets import (
    LabelFileError,
    MissingImage,
    UnknownDataset,
    csv_dataset,
    folder_dataset,
    get_dataset,
    list_datasets,
)

nan = np.nan


def _png(path, value=100, size=(40, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full(size, value, dtype=np.uint8)
    img[: size[0] // 2] = 255 - value
    cv2.imwrite(str(path), img)
    return path


def _labels(ds):
    return {n: ds.labels[:, j].tolist() for j, n in enumerate(ds.label_names)}


def test_registry_lists_every_adapter():
    assert set(list_datasets()) >= {"nih", "nih-google", "padchest", "chexpert", "mimic", "openi", "rsna", "siim",
                                    "vindr", "covid19", "nlm-tb", "tbx11k", "brax"}
    with pytest.raises(UnknownDataset, match="unknown dataset 'nihh'"):
        get_dataset("nihh")


NIH_ROWS = """Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position
a_000.png,Effusion|Mass,0,1,50,M,PA
a_001.png,No Finding,1,1,51,M,AP
b_000.png,Pleural_Thickening,0,2,30,F,PA
"""


@pytest.fixture()
def nih_tiny(tmp_path):
    (tmp_path / "labels.csv").write_text(NIH_ROWS)
    for name, v in (("a_000.png", 10), ("a_001.png", 120), ("b_000.png", 200)):
        _png(tmp_path / "images" / name, v)
    (tmp_path / "images" / "train_val_list.txt").write_text("a_000.png\na_001.png\n")
    (tmp_path / "images" / "test_list.txt").write_text("b_000.png\n")
    return tmp_path


def test_nih_samples_and_meta(nih_tiny):
    ds = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv")
    assert len(ds) == 3 and ds.label_names[:2] == ("Atelectasis", "Consolidation")
    s = ds[0]
    assert s["image"].shape == (1, 40, 32) and s["image"].dtype == np.float32
    assert s["image"].min() >= -1024 and s["image"].max() <= 1024
    assert s["labels"].dtype == np.float32
    assert s["labels"][ds.label_names.index("Effusion")] == 1 and s["labels"][ds.label_names.index("Mass")] == 1
    assert s["labels"].sum() == 2
    assert s["meta"] == {"patient_id": "1", "view": "PA", "age": 50.0, "sex": "M",
                         "path": str(nih_tiny / "images" / "a_000.png"), "dataset": "nih", "index": 0, "row": 0}
    assert ds.frame["split"].tolist() == ["train", "train", "test"]  # official lists found under the root
    sized = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv", size=16)
    assert sized[2]["image"].shape == (1, 16, 16)


def test_transform_receives_the_sample_dict(nih_tiny):
    def flip(sample):
        return {**sample, "image": sample["image"][:, ::-1].copy(), "seen": True}

    ds = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv", transform=flip)
    plain = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv")
    np.testing.assert_array_equal(ds[0]["image"], plain[0]["image"][:, ::-1])
    assert ds[0]["seen"]


def test_missing_image_names_file_and_row(nih_tiny):
    (nih_tiny / "images" / "a_001.png").unlink()
    ds = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv")
    with pytest.raises(MissingImage, match=r"a_001\.png: image of row 1 of dataset 'nih'"):
        ds[1]
    with pytest.raises(MissingImage, match="row 1"):
        get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv", check_files=True)


def test_missing_image_skip_is_counted_with_a_warning(nih_tiny, caplog):
    (nih_tiny / "images" / "a_001.png").unlink()
    ds = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv", on_error="skip")
    with caplog.at_level(logging.WARNING, logger="cxrkit.datasets.base"):
        sample = ds[1]
    assert sample["meta"]["index"] == 2 and ds.skipped == 1
    assert "skipping row 1" in caplog.text and "1 skipped" in caplog.text


def test_corrupt_image_error_names_row(nih_tiny):
    from cxrkit.errors import UnreadableImage

    (nih_tiny / "images" / "b_000.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv")
    with pytest.raises(UnreadableImage, match=r"b_000\.png.*row 2 of dataset 'nih'"):
        ds[2]


def test_unexpected_columns_name_the_missing_ones(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Image Index,Labels,Patient,View Position\nx.png,Mass,1,PA\n")
    with pytest.raises(LabelFileError) as err:
        get_dataset("nih", None, bad)
    assert set(err.value.missing) == {"Finding Labels", "Patient ID", "Patient Age", "Patient Gender"}
    assert "'Finding Labels'" in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(LabelFileError, match="does not exist"):
        get_dataset("nih", None, tmp_path / "nope.csv")
    with pytest.raises(LabelFileError, match="needs its labels file"):
        get_dataset("nih", tmp_path)


def test_one_per_patient_keeps_one_real_images_labels(tmp_path):
    """xrv's groupby().first() would splice row 0's blank Edema with row 1's Edema=1; we keep row 0 whole."""
    csv = tmp_path / "train.csv"
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity," \
             "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other," \
             "Fracture,Support Devices\n"
    rows = ["train/patient00001/study1/view1_frontal.jpg,Male,60,Frontal,PA,,,1.0,,,,,,,,,,,",
            "train/patient00001/study2/view1_frontal.jpg,Male,61,Frontal,AP,,,0.0,,,1.0,,,,,,,,",
            "train/patient00002/study1/view1_frontal.jpg,Female,30,Frontal,PA,1.0,,,,,,,,,,,,,1.0"]
    csv.write_text(header + "\n".join(rows) + "\n")
    ds = get_dataset("chexpert", None, csv, one_per_patient=True)
    assert len(ds) == 2
    first = dict(zip(ds.label_names, ds.labels[0], strict=True))
    assert first["Cardiomegaly"] == 1 and np.isnan(first["Edema"])  # row 0's own labels, not a mix
    assert ds.frame["row"].tolist() == [0, 2] and ds.frame["view"].tolist() == ["PA", "PA"]
    healthy = dict(zip(ds.label_names, ds.labels[1], strict=True))
    assert healthy["Cardiomegaly"] == 0 and healthy["Support Devices"] == 1  # No Finding fills blanks, not devices
    seeded = get_dataset("chexpert", None, csv, one_per_patient=True, seed=3)
    for i in range(len(seeded)):  # whichever row is picked, its labels are that row's
        row = int(seeded.frame["row"].iat[i])
        full = get_dataset("chexpert", None, csv)
        np.testing.assert_array_equal(seeded.labels[i], full.labels[row])


MIMIC_LABELS = "subject_id,study_id,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,Lung Lesion," \
               "Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture," \
               "Support Devices\n10000032,50414267,1.0,,,,,,,,,,,,,\n10000032,53189527,,,-1.0,,,1.0,,,,,0.0,,,1.0\n"
MIMIC_META = "dicom_id,subject_id,study_id,ViewPosition,StudyDate\nd1,10000032,50414267,PA,21800506\n" \
             "d2,10000032,50414267,LATERAL,21800506\nd3,10000032,53189527,AP,21800626\n"


def test_mimic(tmp_path):
    (tmp_path / "labels.csv").write_text(MIMIC_LABELS)
    (tmp_path / "meta.csv").write_text(MIMIC_META)
    (tmp_path / "split.csv").write_text("dicom_id,study_id,subject_id,split\nd1,50414267,10000032,train\n"
                                        "d2,50414267,10000032,train\nd3,53189527,10000032,validate\n")
    ds = get_dataset("mimic", None, tmp_path / "labels.csv",
                     files={"metadata": tmp_path / "meta.csv", "split": tmp_path / "split.csv"})
    assert ds.frame["path"].tolist()[0] == "p10/p10000032/s50414267/d1.jpg"
    lab = _labels(ds)
    assert lab["Cardiomegaly"][0] == 0 and np.isnan(lab["Cardiomegaly"][2])  # uncertain -> NaN by default
    assert lab["Edema"][2] == 1 and lab["Effusion"][2] == 0 and np.isnan(lab["Support Devices"][0])
    assert ds.frame["split"].tolist() == ["train", "train", "valid"]
    pa = get_dataset("mimic", None, tmp_path / "labels.csv", files={"metadata": tmp_path / "meta.csv"}, views="PA,AP")
    assert pa.frame["dicom_id"].tolist() == ["d1", "d3"]


def test_brax(tmp_path):
    csv = tmp_path / "brax.csv"
    cols = "PngPath,PatientID,ViewPosition,PatientAge,PatientSex,No Finding,Enlarged Cardiomediastinum,Cardiomegaly," \
           "Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion," \
           "Pleural Other,Fracture,Support Devices\n"
    csv.write_text(cols + "images/id1/s1/a.png,id1,PA,85 or more,M,,,1,,,,,,,,,,,\n"
                          "images/id2/s1/b.png,id2,AP,40,F,1,,,,,,,,,,,,,\n")
    ds = get_dataset("brax", None, csv)
    assert ds.frame["path"].tolist() == ["id1/s1/a.png", "id2/s1/b.png"]
    assert ds.frame["age"].tolist() == [85.0, 40.0]
    assert _labels(ds)["Cardiomegaly"] == [1.0, 0.0]


def test_covid19(tmp_path):
    csv = tmp_path / "metadata.csv"
    csv.write_text("patientid,offset,sex,age,finding,view,modality,folder,filename\n"
                   "1,0,M,65,Pneumonia/Viral/COVID-19,PA,X-ray,images,a.png\n"
                   "2,,F,40,Pneumonia/Bacterial/Streptococcus,AP,X-ray,images,b.png\n"
                   "3,,F,50,No Finding,PA,X-ray,images,c.png\n"
                   "4,,M,70,todo,PA,X-ray,images,d.png\n"
                   "5,,M,70,Pneumonia/Viral/COVID-19,Axial,CT,volumes,e.nii\n")
    ds = get_dataset("covid19", None, csv)
    assert len(ds) == 4  # CT row dropped
    assert ds.label_names[0] == "Pneumonia"
    lab = _labels(ds)
    assert lab["Pneumonia"][:3] == [1.0, 1.0, 0.0] and np.isnan(lab["Pneumonia"][3])
    assert lab["COVID-19"][:3] == [1.0, 0.0, 0.0] and lab["Streptococcus"][1] == 1
    assert "No Finding" not in ds.label_names and ds.frame["path"].iat[0] == "images/a.png"


def test_nlm_tb(tmp_path):
    for name in ("MCUCXR_0001_0.png", "MCUCXR_0002_1.png", "CHNCXR_0003_1.png"):
        _png(tmp_path / "CXR_png" / name)
    (tmp_path / "ClinicalReadings").mkdir()
    (tmp_path / "ClinicalReadings" / "MCUCXR_0002_1.txt").write_text("Patient's Sex: F\nPatient's Age: 045Y\n")
    ds = get_dataset("nlm-tb", tmp_path)
    assert _labels(ds)["Tuberculosis"] == [1.0, 0.0, 1.0]  # sorted file names
    assert ds.frame["age"].iat[2] == 45 and ds.frame["sex"].iat[2] == "F"
    assert ds[1]["image"].shape == (1, 40, 32)
    _png(tmp_path / "CXR_png" / "bad.png")
    with pytest.raises(LabelFileError, match="bad.png"):
        get_dataset("nlm-tb", tmp_path)


def test_tbx11k(tmp_path):
    ann = {"images": [{"id": 1, "file_name": "tb/a.png"}, {"id": 2, "file_name": "health/b.png"},
                      {"id": 3, "file_name": "tb/c.png"}],
           "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
                           {"image_id": 1, "category_id": 2, "bbox": [1, 1, 5, 5]},
                           {"image_id": 3, "category_id": 2, "bbox": [1, 1, 5, 5]}],
           "categories": [{"id": 1, "name": "ActiveTuberculosis", "supercategory": "Tuberculosis"},
                          {"id": 2, "name": "ObsoletePulmonaryTuberculosis", "supercategory": "Tuberculosis"},
                          {"id": 3, "name": "PulmonaryTuberculosis", "supercategory": "Tuberculosis"}]}
    path = tmp_path / "trainval.json"
    path.write_text(json.dumps(ann))
    lab = _labels(get_dataset("tbx11k", None, path))
    assert lab["ActiveTuberculosis"] == [1, 0, 0] and lab["ObsoletePulmonaryTuberculosis"] == [1, 0, 1]
    assert lab["Tuberculosis"] == [1, 0, 1] and lab["PulmonaryTuberculosis"] == [0, 0, 0]
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(LabelFileError, match="annotations"):
        get_dataset("tbx11k", None, path)


def test_siim_rle_decode_round_trip():
    from cxrkit.datasets.kaggle import rle_decode

    mask = np.zeros((8, 6), dtype=np.uint8)
    mask[2:5, 1] = 1
    mask[0:2, 4] = 1
    flat = mask.T.flatten()  # SIIM runs go down columns
    runs, pos, prev_end = [], 0, 0
    while pos < len(flat):
        if flat[pos]:
            start = pos
            while pos < len(flat) and flat[pos]:
                pos += 1
            runs += [start - prev_end, pos - start]
            prev_end = pos
        pos += 1
    np.testing.assert_array_equal(rle_decode(" ".join(map(str, runs)), 8, 6), mask)
    assert rle_decode("-1", 8, 6).sum() == 0


def test_folder_dataset(tmp_path):
    _png(tmp_path / "Effusion" / "a.png")
    _png(tmp_path / "Effusion" / "sub" / "b.png")
    _png(tmp_path / "normal" / "c.jpg")
    _png(tmp_path / "loose.png")
    ds = folder_dataset(tmp_path)
    assert ds.label_names == ("Effusion", "normal")
    lab = _labels(ds)
    paths = ds.frame["path"].tolist()
    assert lab["Effusion"][paths.index("Effusion/sub/b.png")] == 1
    assert lab["normal"][paths.index("normal/c.jpg")] == 1 and lab["Effusion"][paths.index("normal/c.jpg")] == 0
    assert np.isnan(lab["Effusion"][paths.index("loose.png")])
    assert ds[0]["image"].shape == (1, 40, 32)


def test_csv_dataset(tmp_path):
    _png(tmp_path / "x.png")
    csv = tmp_path / "mine.csv"
    csv.write_text("file,pid,effusion,mass\nx.png,p1,1,\nx.png,p2,-1,0\n")
    ds = csv_dataset(csv, tmp_path, path_column="file", patient_column="pid",
                     label_columns={"effusion": "Effusion", "mass": "Mass"}, uncertain="ones")
    assert ds.label_names == ("Effusion", "Mass")
    np.testing.assert_array_equal(ds.labels, [[1, nan], [1, 0]])
    assert ds[1]["meta"]["patient_id"] == "p2"
    with pytest.raises(LabelFileError, match="missing column"):
        csv_dataset(csv, tmp_path, path_column="path")
    csv.write_text("file,effusion\nx.png,yes\n")
    with pytest.raises(LabelFileError, match="row 0, column 'effusion'"):
        csv_dataset(csv, tmp_path, path_column="file")
    csv.write_text("file,effusion\nx.png,2\n")
    with pytest.raises(LabelFileError, match="is not 1, 0, -1 or blank"):
        csv_dataset(csv, tmp_path, path_column="file")


def test_explicit_label_list_and_dataloader_collation(nih_tiny):
    import torch
    from torch.utils.data import DataLoader

    from cxrkit.labels import PATHOLOGIES

    ds = get_dataset("nih", nih_tiny / "images", nih_tiny / "labels.csv", labels=PATHOLOGIES, size=16)
    assert ds.label_names == PATHOLOGIES and ds.labels.shape == (3, 18)
    assert np.isnan(ds.labels[:, PATHOLOGIES.index("Lung Opacity")]).all()  # NIH never says
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 1, 16, 16) and batch["labels"].dtype == torch.float32
    assert batch["meta"]["patient_id"] == ["1", "1", "2"] and batch["meta"]["dataset"] == ["nih"] * 3
