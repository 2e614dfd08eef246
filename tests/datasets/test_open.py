"""``open_dataset`` for every kind of source, and sources declared as column maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrkit.datasets import (
    OWN_SOURCES,
    DatasetError,
    DatasetSpec,
    LabelFileError,
    UnknownDataset,
    XrayDataset,
    csv_dataset,
    folder_dataset,
    get_dataset,
    list_datasets,
    open_dataset,
    source_names,
)

from .test_adapters import NIH_ROWS, _labels, _png


def test_a_registered_dataset_is_its_adapter(tmp_path):
    (tmp_path / "labels.csv").write_text(NIH_ROWS)
    (tmp_path / "bbox.csv").write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\na_000.png,Mass,1,2,3,4\n")
    ds = open_dataset("nih", tmp_path, tmp_path / "labels.csv", files={"bbox": tmp_path / "bbox.csv"}, views="PA",
                      csv={"path_column": "ignored for a registered dataset"})
    same = get_dataset("nih", tmp_path, tmp_path / "labels.csv", files={"bbox": tmp_path / "bbox.csv"}, views="PA")
    assert ds.name == "nih" and ds.frame["path"].tolist() == same.frame["path"].tolist() == ["a_000.png", "b_000.png"]
    np.testing.assert_array_equal(ds.labels, same.labels)
    assert ds.frame["has_boxes"].tolist() == [True, False]
    with pytest.raises(UnknownDataset, match="unknown dataset 'nhi'"):
        open_dataset("nhi", tmp_path, tmp_path / "labels.csv")


def test_csv_source_takes_csv_options(tmp_path):
    _png(tmp_path / "x.png")
    csv = tmp_path / "mine.csv"
    csv.write_text("file,pid,view,effusion,mass\nx.png,p1,PA,1,\nx.png,p2,AP,-1,0\n")
    ds = open_dataset("csv", tmp_path, csv, csv={"path_column": "file", "patient_column": "pid", "view_column": "view",
                                                 "label_columns": {"effusion": "Effusion", "mass": "Mass"}},
                      uncertain="ones", views=["AP"])
    assert isinstance(ds, XrayDataset) and ds.name == "csv" and len(ds) == 1
    assert ds.label_names == ("Effusion", "Mass") and ds.labels.tolist() == [[1.0, 0.0]]
    assert ds[0]["meta"]["patient_id"] == "p2" and ds[0]["image"].shape == (1, 40, 32)
    with pytest.raises(LabelFileError, match="csv dataset needs its CSV file"):
        open_dataset("csv", tmp_path)


def test_folder_source_reads_labels_from_sub_folders(tmp_path):
    _png(tmp_path / "Effusion" / "a.png")
    _png(tmp_path / "normal" / "b.png")
    ds = open_dataset("folder", tmp_path, tmp_path / "not-used.csv", one_per_patient=True)
    assert ds.name == "folder" and ds.label_names == ("Effusion", "normal")
    assert _labels(ds) == {"Effusion": [1.0, 0.0], "normal": [0.0, 1.0]}
    assert ds.frame["path"].tolist() == folder_dataset(tmp_path).frame["path"].tolist()
    with pytest.raises(DatasetError, match="folder dataset needs its image folder"):
        open_dataset("folder")


def test_source_names_cover_every_kind():
    assert source_names() == [*list_datasets(), "folder", "csv"] and set(OWN_SOURCES) == {"folder", "csv"}


def test_a_column_map_is_a_whole_adapter(tmp_path):
    spec = DatasetSpec(name="toy", title="toy", kind="columns", table={"Effusion": "Effusion", "TB": "Tuberculosis"},
                       columns={"path": "File", "patient_id": "Subject", "age": "Age"}, path_prefix="png/|img/",
                       values={"age": {"90+": 90}}, label_codes=(1, 0))
    csv = tmp_path / "toy.csv"
    csv.write_text("File,Subject,Age,Effusion,TB,extra\npng/a.png,s1,90+,1,0,x\nimg/b.png,s2,40,,1,y\nc.png,3,7,0,0,z\n")
    ds = XrayDataset(spec, tmp_path, csv)
    assert ds.frame["path"].tolist() == ["a.png", "b.png", "c.png"]
    assert ds.frame["age"].tolist() == [90.0, 40.0, 7.0] and ds.frame["patient_id"].tolist() == ["s1", "s2", "3"]
    assert ds.frame["view"].tolist() == ["UNKNOWN"] * 3 and ds.frame["row"].tolist() == [0, 1, 2]
    lab = _labels(ds)
    assert lab["Effusion"][0] == 1 and np.isnan(lab["Effusion"][1]) and lab["Tuberculosis"] == [0.0, 1.0, 0.0]
    csv.write_text("File,Subject,Age,Effusion,TB\na.png,s1,1,1,-1\n")
    with pytest.raises(LabelFileError, match=r"row 0, column 'TB': label value -1 is not 1, 0 or blank"):
        XrayDataset(spec, tmp_path, csv)
    csv.write_text("File,Age,Effusion,TB\na.png,1,1,0\n")
    with pytest.raises(LabelFileError, match="missing column.*'Subject'"):
        XrayDataset(spec, tmp_path, csv)


def test_a_spec_is_a_loader_or_a_column_map():
    with pytest.raises(ValueError, match="either load or columns"):
        DatasetSpec(name="x", title="x", table={}, kind="columns")
    with pytest.raises(ValueError, match="either load or columns"):
        DatasetSpec(name="x", title="x", table={}, kind="columns", columns={"path": "p"},
                    load=lambda files: pd.DataFrame())
    with pytest.raises(ValueError, match="kind='columns'"):
        DatasetSpec(name="x", title="x", table={}, columns={"path": "p"})


def test_declared_adapters_read_like_their_loaders(tmp_path):
    """csv_dataset and BRAX are column maps now: same frame columns and label codes as a hand loader."""
    csv = tmp_path / "mine.csv"
    csv.write_text("path,age,Effusion\na.png,50,1\nb.png,,-1\n")
    ds = csv_dataset(csv, tmp_path, age_column="age")
    assert ds.spec.load is None and ds.spec.columns == {"path": "path", "patient_id": "path", "age": "age"}
    assert ds.frame["patient_id"].tolist() == ["a.png", "b.png"] and np.isnan(ds.frame["age"].iat[1])
    assert ds.labels[0, 0] == 1 and np.isnan(ds.labels[1, 0])  # uncertain -> unknown by default
    from cxrkit.datasets import get_spec

    assert get_spec("brax").load is None and get_spec("brax").columns["path"] == "PngPath"


def test_nih_refuses_a_finding_outside_its_vocabulary_for_training_and_evaluation_alike(tmp_path):
    """One rule for one label file: an unknown NIH token is an error naming its row, whether the
    file is opened to train (the adapter) or to evaluate (``load_labels``), never a dropped finding."""
    from cxrkit.evaluate import InputFileError, load_labels

    bad = NIH_ROWS.replace("Effusion|Mass", "Effusion|Pseudonodule")
    assert bad != NIH_ROWS
    (tmp_path / "labels.csv").write_text(bad)
    with pytest.raises(LabelFileError, match="row 2: unknown finding 'Pseudonodule'"):
        open_dataset("nih", tmp_path, tmp_path / "labels.csv")
    with pytest.raises(InputFileError, match="row 2: unknown finding 'Pseudonodule'"):
        load_labels(tmp_path / "labels.csv")
