"""Loaders: foreign gzipped CSVs with an id column and prefix, NIH Data_Entry, clear errors."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrkit.errors import CxrkitError
from cxrkit.evaluate import (
    InputFileError,
    LabelColumnMissing,
    NoOverlap,
    PrefixMatchesNothing,
    evaluate_predictions,
    image_id,
    load_labels,
    load_nih_labels,
    load_predictions,
)
from cxrkit.labels import NIH_PATHOLOGIES

NIH_HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"


def _foreign_gz(fixture_dir, path):
    ours = pd.read_csv(fixture_dir / "predictions.csv")
    ours = ours[ours["status"] == "ok"]
    foreign = pd.DataFrame({"Image Index": ours["file"].str.rsplit("/", n=1).str[-1]})
    for label in ("Effusion", "Pneumonia", "Cardiomegaly"):
        foreign[f"prob_{label}"] = ours[label]
    foreign["model_version"] = "v2"
    with gzip.open(path, "wt", newline="") as f:
        foreign.to_csv(f, index=False)
    return path


def test_foreign_gzipped_csv_gives_the_same_evaluation(fixture_dir, tmp_path):
    gz = _foreign_gz(fixture_dir, tmp_path / "theirs.csv.gz")
    foreign = load_predictions(gz, id_column="Image Index", prefix="prob_")
    assert list(foreign.columns) == ["Effusion", "Pneumonia", "Cardiomegaly"]
    ours = load_predictions(fixture_dir / "predictions.csv")
    labels = load_labels(fixture_dir / "labels.csv").labels
    a = evaluate_predictions(foreign, labels, n_bootstrap=0).table
    b = evaluate_predictions(ours, labels, n_bootstrap=0).table
    pd.testing.assert_frame_equal(a, b)


def test_our_csv_keeps_only_ok_rows_by_file_name(fixture_dir):
    preds = load_predictions(fixture_dir / "predictions.csv")
    assert len(preds) == 58 and "img_011.png" not in preds.index  # 60 rows, 2 failed
    assert np.isnan(preds.loc["img_015.png", "Pneumonia"])  # empty cell = no prediction
    assert image_id(r"C:\scans\x.png") == "x.png" and image_id("/a/b/x.png") == "x.png"


def test_our_csv_with_a_runs_extras_reads_the_same_scores(fixture_dir, tmp_path):
    """Orientation, heat-map, DICOM and OOD columns beside the scores are not labels, nor an error."""
    frame = pd.read_csv(fixture_dir / "predictions.csv")
    frame["orientation"], frame["orientation_fixed"], frame["heatmaps"] = "upright", False, "maps/a.Effusion.gradcam.png"
    frame["dicom_sr"], frame["ood_score"], frame["ood"] = "not written: not a DICOM file", 0.1, 0
    frame.to_csv(tmp_path / "extras.csv", index=False)
    pd.testing.assert_frame_equal(load_predictions(tmp_path / "extras.csv"), load_predictions(fixture_dir / "predictions.csv"))


def test_prefix_matching_nothing_is_a_clear_error(fixture_dir, tmp_path):
    gz = _foreign_gz(fixture_dir, tmp_path / "theirs.csv.gz")
    with pytest.raises(PrefixMatchesNothing, match="'score_'.*'prob_Effusion'"):
        load_predictions(gz, id_column="Image Index", prefix="score_")
    with pytest.raises(InputFileError, match="`id_column`"):
        load_predictions(gz)
    with pytest.raises(InputFileError, match="no id column 'image'"):
        load_predictions(gz, id_column="image", prefix="prob_")


def test_no_overlap_names_counts_and_examples(fixture_dir):
    preds = load_predictions(fixture_dir / "predictions.csv")
    labels = pd.DataFrame({"Effusion": [1.0, 0.0, 1.0, 0.0]}, index=[f"other_{i}.jpg" for i in range(4)])
    with pytest.raises(NoOverlap) as info:
        evaluate_predictions(preds, labels, n_bootstrap=0)
    message = str(info.value)
    assert isinstance(info.value, CxrkitError)
    assert "58 ids" in message and "4 ids" in message
    assert "'img_001.png', 'img_002.png', 'img_003.png', ..." in message
    assert "'other_0.jpg', 'other_1.jpg', 'other_2.jpg', ..." in message


def test_missing_label_column_is_a_clear_error(fixture_dir):
    preds = load_predictions(fixture_dir / "predictions.csv")
    labels = load_labels(fixture_dir / "labels.csv").labels
    with pytest.raises(LabelColumnMissing, match="'Edema' missing from the labels"):
        evaluate_predictions(preds, labels, label_names=["Effusion", "Edema"], n_bootstrap=0)
    with pytest.raises(LabelColumnMissing, match="missing from the labels"):
        evaluate_predictions(preds[["Edema"]], labels, n_bootstrap=0)


def test_nih_loader_no_finding_and_unknown_tokens(tmp_path):
    path = tmp_path / "Data_Entry_2017_v2020.csv"
    path.write_text(NIH_HEADER + "a.png,No Finding,0,1,50,M,PA\nb.png,Effusion|Pleural_Thickening,1,1,51,M,PA\n"
                    "c.png,Hernia,0,2,60,F,AP\n")
    table = load_nih_labels(path)
    assert list(table.labels.columns) == list(NIH_PATHOLOGIES)
    assert (table.labels.loc["a.png"] == 0).all()  # No Finding: all 14 negative, none unknown
    assert table.labels.loc["b.png"].sum() == 2 and table.labels.loc["b.png", "Pleural_Thickening"] == 1
    assert table.patients.to_dict() == {"a.png": "1", "b.png": "1", "c.png": "2"}
    assert load_labels(path).labels.equals(table.labels)  # recognised by its header
    path.write_text(NIH_HEADER + "a.png,Pseudonodule,0,1,50,M,PA\n")
    with pytest.raises(InputFileError, match="unknown finding 'Pseudonodule'"):
        load_nih_labels(path)


def test_plain_labels_reject_uncertain_values(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("file,Effusion,Sex\nx.png,-1,M\ny.png,1,F\n")
    with pytest.raises(InputFileError, match="'Effusion' must hold 1, 0 or empty"):
        load_labels(path, "csv")


REAL_NIH = Path(os.environ.get("CXRKIT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


@pytest.mark.skipif(not (REAL_NIH / "nih" / "Data_Entry_2017_v2020.csv").is_file(), reason="../shared NIH subset absent")
def test_real_nih_subset_counts_match_its_readme():
    table = load_nih_labels(REAL_NIH / "nih" / "Data_Entry_2017_v2020.csv")
    counts = table.labels.sum().astype(int).to_dict()
    assert counts == {
        "Atelectasis": 141, "Consolidation": 62, "Infiltration": 224, "Pneumothorax": 33, "Edema": 100,
        "Emphysema": 22, "Fibrosis": 25, "Effusion": 115, "Pneumonia": 503, "Pleural_Thickening": 48,
        "Cardiomegaly": 32, "Nodule": 47, "Mass": 40, "Hernia": 8,
    }
    assert len(table.labels) == 1200 and table.patients.nunique() == 881
    assert int((table.labels.sum(axis=1) == 0).sum()) == 532  # the "No Finding" rows: all 14 labels 0
    assert not table.labels.isna().any().any()
