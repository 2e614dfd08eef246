"""``cxr evaluate --dataset NAME``: any cxrkit.datasets adapter as the label source, ids by file name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.datasets import get_dataset, list_datasets
from cxrkit.errors import CxrkitError
from cxrkit.evaluate import InputFileError, evaluate_predictions, label_formats, load_labels, load_predictions
from cxrkit.evaluate.metrics import auroc
from cxrkit.labels import NIH_PATHOLOGIES

runner = CliRunner()

CHEXPERT_HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
                   "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia",
                   "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]


def _chexpert_csv(path: Path) -> pd.DataFrame:
    """Ten studies of six patients; Pleural Effusion (-> Effusion) has 1, 0, -1 and blank cells."""
    effusion = [1, 0, -1, 1, np.nan, 0, -1, 1, 0, np.nan]
    no_finding = [np.nan, 1, np.nan, np.nan, 1, np.nan, np.nan, np.nan, 1, np.nan]
    cardio = [1, 0, 0, -1, np.nan, 1, 0, np.nan, np.nan, 1]
    patients = [1, 1, 2, 3, 3, 4, 5, 5, 6, 6]
    rows = []
    for i in range(10):
        pid = patients[i]
        row = dict.fromkeys(CHEXPERT_HEADER, np.nan)
        # file names must be unique across the file: ids are matched by file name
        row.update({"Path": f"CheXpert-v1.0-small/valid/patient{pid:05d}/study{i + 1}/img{i:02d}_frontal.jpg",
                    "Sex": "Female" if i % 2 else "Male", "Age": 40 + i, "Frontal/Lateral": "Frontal",
                    "AP/PA": "PA", "No Finding": no_finding[i], "Pleural Effusion": effusion[i],
                    "Cardiomegaly": cardio[i]})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=CHEXPERT_HEADER)
    frame.to_csv(path, index=False)
    return frame


def _predictions(path: Path, files: list[str], labels: dict[str, np.ndarray]) -> None:
    frame = pd.DataFrame({"file": files, "status": "ok", "error": ""})
    for name, values in labels.items():
        frame[name] = values
    frame.to_csv(path, index=False)


def test_chexpert_labels_with_uncertain_cells_end_to_end(evaluate_app, tmp_path):

    raw = _chexpert_csv(tmp_path / "valid.csv")
    # predictions live elsewhere: only the file name ties them to the label rows
    files = [f"/scans/elsewhere/{Path(p).name}" for p in raw["Path"]]
    effusion_score = np.array([0.9, 0.2, 0.95, 0.3, 0.1, 0.4, 0.05, 0.8, 0.35, 0.5])
    cardio_score = np.linspace(0.1, 0.9, 10)
    _predictions(tmp_path / "preds.csv", files, {"Effusion": effusion_score, "Cardiomegaly": cardio_score})

    out = tmp_path / "out"
    result = runner.invoke(evaluate_app, [
        "evaluate", "predictions", str(tmp_path / "preds.csv"), "--labels", str(tmp_path / "valid.csv"),
        "--dataset", "chexpert", "--output", str(out), "--bootstrap", "20", "--seed", "1", "--no-plots",
        "--format", "json"])
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv").set_index("label")

    # Effusion: -1 -> unknown (left out); blank + "No Finding" = 1 -> 0; blank otherwise -> unknown
    #   rows: 0:1 1:0 2:-1 3:1 4:blank,NF 5:0 6:-1 7:1 8:0 9:blank
    y = np.array([1, 0, np.nan, 1, 0, 0, np.nan, 1, 0, np.nan])
    known = ~np.isnan(y)
    assert metrics.loc["Effusion", "n_pos"] == 3 and metrics.loc["Effusion", "n_neg"] == 4
    assert metrics.loc["Effusion", "auc"] == pytest.approx(auroc(y[known], effusion_score[known]), abs=1e-12)
    # Cardiomegaly: -1 (row 3) unknown; blank rows 4 and 8 have No Finding = 1 -> 0; row 7 blank -> unknown
    y = np.array([1, 0, 0, np.nan, 0, 1, 0, np.nan, 0, 1])
    known = ~np.isnan(y)
    assert metrics.loc["Cardiomegaly", "n_pos"] == 3 and metrics.loc["Cardiomegaly", "n_neg"] == 5
    assert metrics.loc["Cardiomegaly", "auc"] == pytest.approx(auroc(y[known], cardio_score[known]), abs=1e-12)

    table = load_labels(tmp_path / "valid.csv", "chexpert")
    assert list(table.labels.index[:2]) == ["img00_frontal.jpg", "img01_frontal.jpg"]
    assert table.patients.nunique() == 6 and table.patients["img09_frontal.jpg"] == "00006"


def test_duplicate_file_names_in_an_adapter_file_are_a_clear_error(tmp_path):
    raw = _chexpert_csv(tmp_path / "valid.csv")
    raw["Path"] = raw["Path"].str.replace(r"img\d+_frontal", "view1_frontal", regex=True)
    raw.to_csv(tmp_path / "valid.csv", index=False)
    with pytest.raises(InputFileError, match="appear more than once.*'view1_frontal.jpg'"):
        load_labels(tmp_path / "valid.csv", "chexpert")


def test_adapter_errors_name_the_file(tmp_path):
    (tmp_path / "valid.csv").write_text("Path,Sex\na.jpg,Male\n")
    with pytest.raises(InputFileError, match="missing column"):
        load_labels(tmp_path / "valid.csv", "chexpert")


def test_unknown_dataset_name_lists_the_choices(evaluate_app, fixture_dir, tmp_path):
    assert label_formats()[0] == "csv" and set(list_datasets()) <= set(label_formats())
    result = runner.invoke(evaluate_app, [
        "evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels", str(fixture_dir / "labels.csv"),
        "--dataset", "chexpret", "--output", str(tmp_path / "o"), "--bootstrap", "0", "--no-plots"])
    assert isinstance(result.exception, CxrkitError)
    message = str(result.exception)
    assert "'chexpret'" in message and "chexpert" in message and "nih" in message and "csv" in message
    with pytest.raises(InputFileError, match="unknown label format 'chexpret'; choose one of csv, .*chexpert"):
        load_labels(fixture_dir / "labels.csv", "chexpret")
    # csv-only options with an adapter are refused, not ignored
    result = runner.invoke(evaluate_app, [
        "evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels", str(fixture_dir / "labels.csv"),
        "--dataset", "chexpert", "--patient-column", "pid", "--output", str(tmp_path / "o"), "--no-plots"])
    assert isinstance(result.exception, CxrkitError) and "--dataset csv" in str(result.exception)


REAL_NIH = Path(os.environ.get("CXRKIT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
NIH_FILE = REAL_NIH / "nih" / "Data_Entry_2017_v2020.csv"


def _old_nih_parser(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The hand-written NIH parser ``load_nih_labels`` used before it went through the adapter."""
    frame = pd.read_csv(path)
    where = {name: j for j, name in enumerate(NIH_PATHOLOGIES)}
    matrix = np.zeros((len(frame), len(NIH_PATHOLOGIES)))
    for i, cell in enumerate(frame["Finding Labels"].tolist()):
        if not isinstance(cell, str):
            matrix[i] = np.nan
            continue
        for token in (t.strip() for t in cell.split("|")):
            if token != "No Finding":
                matrix[i, where[token]] = 1.0
    index = pd.Index(frame["Image Index"].astype(str), name="id")
    return (pd.DataFrame(matrix, index=index, columns=list(NIH_PATHOLOGIES)),
            pd.Series(frame["Patient ID"].astype(str).to_numpy(), index=index))


@pytest.mark.skipif(not NIH_FILE.is_file(), reason="../shared NIH subset absent")
def test_real_nih_subset_through_the_adapter_matches_the_old_parser(evaluate_app, tmp_path):
    old_labels, old_patients = _old_nih_parser(NIH_FILE)
    table = load_labels(NIH_FILE, "nih")
    pd.testing.assert_frame_equal(table.labels, old_labels, check_dtype=False)
    assert (table.patients == old_patients).all()
    data = get_dataset("nih", None, NIH_FILE)
    assert np.array_equal(np.nan_to_num(data.labels, nan=-9), np.nan_to_num(old_labels.to_numpy(), nan=-9))

    rng = np.random.default_rng(20240)
    scores = rng.random((len(old_labels), len(NIH_PATHOLOGIES)))
    scores += 0.3 * old_labels.to_numpy()  # some signal, so AUCs differ from 0.5 and between labels
    files = [f"/data/nih/images/{name}" for name in old_labels.index]
    _predictions(tmp_path / "preds.csv", files, {n: scores[:, j] for j, n in enumerate(NIH_PATHOLOGIES)})

    preds = load_predictions(tmp_path / "preds.csv")
    expected = evaluate_predictions(preds, old_labels, patients=old_patients, n_bootstrap=50, seed=7).table
    out = tmp_path / "out"
    result = runner.invoke(evaluate_app, [
        "evaluate", "predictions", str(tmp_path / "preds.csv"), "--labels", str(NIH_FILE), "--dataset", "nih",
        "--output", str(out), "--bootstrap", "50", "--seed", "7", "--no-plots", "--format", "json"])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out / "metrics.csv")
    assert list(got["label"]) == list(expected["label"])
    for column in ("auc", "auc_ci_low", "auc_ci_high", "n_pos", "n_neg"):
        np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float), rtol=0, atol=1e-9)
    assert [r["label"] for r in json.loads(result.stdout)][:14] == list(NIH_PATHOLOGIES)
