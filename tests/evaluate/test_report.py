"""The report folder: metrics.csv with the exact columns, real PNGs, report.md linking them."""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd
from PIL import Image

from cxrkit.evaluate import (
    METRICS_COLUMNS,
    compare_predictions,
    evaluate_predictions,
    load_labels,
    load_predictions,
    write_compare,
    write_report,
)


def _check_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert min(pixels.shape) >= 200
    assert pixels.std() > 5 and len(np.unique(pixels)) > 20  # more than a blank canvas


def test_report_folder_has_every_artefact(fixture_dir, tmp_path):
    table = load_labels(fixture_dir / "labels.csv")
    result = evaluate_predictions(load_predictions(fixture_dir / "predictions.csv"), table.labels,
                                  patients=table.patients, n_bootstrap=100)
    files = write_report(result, tmp_path / "out", sources={"predictions": "p.csv"}, command="cxr evaluate ...")
    out = tmp_path / "out"
    with open(out / "metrics.csv", newline="") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == METRICS_COLUMNS
        assert [row[0] for row in reader] == ["Effusion", "Pneumonia", "Cardiomegaly", "mean"]
    pngs = sorted(out.rglob("*.png"))
    names = {p.name for p in pngs}
    for label in ("Effusion", "Pneumonia", "Cardiomegaly"):
        assert {f"roc_{label}.png", f"pr_{label}.png"} <= names
    assert "reliability.png" in names
    for png in pngs:
        _check_png(png)
    report = (out / "report.md").read_text()
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report))
    assert linked == {p.relative_to(out).as_posix() for p in pngs}
    assert "(metrics.csv)" in report and "patients" in report and "seed 0" in report
    assert "Edema" in report  # a predicted label absent from the labels is named, not silently dropped
    assert files["report.md"] == out / "report.md"


def test_multiclass_accuracy_auc_and_confusion(tmp_path):
    classes = ["normal", "pneumonia", "covid"]
    truth = ["normal"] * 4 + ["pneumonia"] * 3 + ["covid"] * 3
    probs = np.array([
        [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.5, 0.2, 0.3], [0.2, 0.7, 0.1],  # last: normal called pneumonia
        [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4],  # last: pneumonia called covid
        [0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.2, 0.3, 0.5],
    ])
    ids = [f"{i}.png" for i in range(10)]
    onehot = pd.DataFrame([[float(t == c) for c in classes] for t in truth], index=ids, columns=classes)
    result = evaluate_predictions(pd.DataFrame(probs, index=ids, columns=classes), onehot, task="multiclass",
                                  n_bootstrap=20)
    m = result.multiclass
    assert m.accuracy == 0.8
    assert m.confusion.loc["normal", "pneumonia"] == 1 and m.confusion.loc["pneumonia", "covid"] == 1
    assert int(np.trace(m.confusion.to_numpy())) == 8
    assert m.auc["covid"] == 1.0
    files = write_report(result, tmp_path)
    _check_png(files["confusion"])
    assert "plots/confusion_matrix.png" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "confusion_matrix.csv").is_file()


def test_compare_csv_columns(fixture_dir, tmp_path):
    a = load_predictions(fixture_dir / "predictions.csv")
    b = a.copy()
    b["Effusion"] = b["Effusion"].rank()  # same ranking: p = 1
    b = b.drop(index=b.index[:5])  # B scored fewer images: only shared ones count
    frame = compare_predictions(a, b, load_labels(fixture_dir / "labels.csv").labels)
    files = write_compare(frame, tmp_path)
    written = pd.read_csv(files["compare.csv"])
    assert list(written.columns) == ["label", "auc_a", "auc_b", "diff", "z", "p_value", "n"]
    row = written.set_index("label").loc["Effusion"]
    assert row["p_value"] == 1.0 and row["diff"] == 0.0 and row["n"] == 49
