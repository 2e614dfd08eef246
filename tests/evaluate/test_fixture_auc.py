"""The committed fixture reproduces AUCs computed independently, exactly.

The expected AUCs are counted here by brute force over every (positive, negative)
pair - the probability that a random positive outranks a random negative, ties 1/2 -
in exact rational arithmetic, reading the CSVs with the csv module: no pandas, no
scikit-learn, no cxrkit code. They are also written down as fractions so a change to
the fixture cannot silently move them.
"""

from __future__ import annotations

import csv
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from cxrkit.evaluate import evaluate_predictions, load_labels, load_predictions

LABELS = ("Effusion", "Pneumonia", "Cardiomegaly")
#: (n_pos, n_neg, AUC) counted by hand-checkable pair counting (see _pair_count_auc).
EXPECTED = {
    "Effusion": (21, 32, Fraction(1067, 1344)),
    "Pneumonia": (10, 41, Fraction(121, 164)),
    "Cardiomegaly": (11, 42, Fraction(211, 231)),
}


def _pair_count_auc(fixture_dir, label):
    with open(fixture_dir / "labels.csv", newline="") as f:
        truth = {row["Image Index"]: row[label] for row in csv.DictReader(f)}
    with open(fixture_dir / "predictions.csv", newline="") as f:
        scores = {row["file"].rsplit("/", 1)[-1]: row[label] for row in csv.DictReader(f) if row["status"] == "ok"}
    pos, neg = [], []
    for image, score in scores.items():
        if image in truth and truth[image] != "" and score != "":
            (pos if truth[image] == "1" else neg).append(Fraction(score))  # Fraction("0.31") is exact
    half_wins = sum(2 if p > q else 1 if p == q else 0 for p in pos for q in neg)
    return len(pos), len(neg), Fraction(half_wins, 2 * len(pos) * len(neg))


@pytest.mark.parametrize("label", LABELS)
def test_pair_counting_gives_the_recorded_fractions(fixture_dir, label):
    assert _pair_count_auc(fixture_dir, label) == EXPECTED[label]


def test_fixture_has_the_hard_cases(fixture_dir):
    with open(fixture_dir / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert any(row[label] == "" for row in rows for label in LABELS)  # unknown labels
    patients = [row["Patient ID"] for row in rows]
    assert max(patients.count(p) for p in set(patients)) >= 3  # patients with several images
    with open(fixture_dir / "predictions.csv", newline="") as f:
        preds = list(csv.DictReader(f))
    assert any(row["status"] != "ok" for row in preds)  # failed rows must not count
    assert len({row["file"].rsplit("/", 2)[-2] for row in preds}) == 2  # same ids, different folders


def test_evaluate_predictions_reproduces_them_exactly(fixture_dir):
    table = load_labels(fixture_dir / "labels.csv")
    result = evaluate_predictions(load_predictions(fixture_dir / "predictions.csv"), table.labels,
                                  patients=table.patients, n_bootstrap=0)
    rows = result.table.set_index("label")
    for label, (n_pos, n_neg, auc) in EXPECTED.items():
        assert rows.loc[label, "n_pos"] == n_pos and rows.loc[label, "n_neg"] == n_neg
        assert abs(rows.loc[label, "auc"] - float(auc)) <= 1e-12
    assert abs(rows.loc["mean", "auc"] - float(sum(a for *_, a in EXPECTED.values()) / 3)) <= 1e-12
    assert result.n_images == 55  # 57 labelled predicted images minus 2 failed rows


def test_cli_metrics_csv_reproduces_them_to_the_digit(fixture_dir, evaluate_app, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(evaluate_app, [
        "evaluate", "predictions", str(fixture_dir / "predictions.csv"), "--labels", str(fixture_dir / "labels.csv"),
        "--dataset", "csv", "--output", str(out), "--bootstrap", "50", "--no-plots"])
    assert result.exit_code == 0, result.output
    with open(out / "metrics.csv", newline="") as f:
        rows = {row["label"]: row for row in csv.DictReader(f)}
    for label, (n_pos, n_neg, auc) in EXPECTED.items():
        assert abs(float(rows[label]["auc"]) - float(auc)) <= 1e-12
        assert (int(rows[label]["n_pos"]), int(rows[label]["n_neg"])) == (n_pos, n_neg)
