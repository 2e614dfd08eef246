"""What a notebook does with cxrkit, through public names only: the jobs the CLI runs, one call each.

No ``cxrkit.cli`` and no underscore name anywhere: a job ``cxr predict --heatmaps --ood
--fix-orientation --dicom-sr`` runs is one :func:`cxrkit.predict.predict_to_file` call, and
its rows go on into :mod:`cxrkit.evaluate`. Run on the films bundled in ``examples/`` with the
bundled models (no download).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import cxrkit
import cxrkit.age
import cxrkit.dicom
import cxrkit.embed
import cxrkit.evaluate
import cxrkit.explain
import cxrkit.predict
from cxrkit.preprocess import FilmSteps, OrientationFixer

pytestmark = pytest.mark.slow  # whole bundled models, end to end

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def films() -> list[Path]:
    found = sorted(EXAMPLES.glob("*.png")) + sorted(EXAMPLES.glob("*.dcm"))
    assert len(found) == 7, found
    return found


@pytest.fixture(scope="module")
def embeddings(films, tmp_path_factory) -> Path:
    """The classifier's pooled features of the example films, as ``cxr embed`` writes them."""
    out = tmp_path_factory.mktemp("embed") / "embeddings.parquet"
    embedder = cxrkit.embed.Embedder(cxrkit.models.DEFAULT_MODEL, precision="fp32")
    summary = cxrkit.embed.embed_to_file(films, embedder, out, batch_size=4)
    assert (summary.ok, summary.failed) == (7, 0)
    return out


def test_embed_to_file_writes_a_searchable_table(films, embeddings):
    files, vectors, meta = cxrkit.embed.read_embeddings(embeddings)
    assert [Path(f).name for f in files] == [f.name for f in films]
    assert vectors.shape == (7, 1024) and np.isfinite(vectors).all() and np.abs(vectors).sum(axis=1).min() > 0
    assert meta["model"] == cxrkit.models.DEFAULT_MODEL and meta["layer"] == "features"
    index = cxrkit.embed.EmbeddingIndex.load(embeddings)  # the search transform was fitted at the end of the run
    best = index.search(vectors[:1], k=1)[0][0]
    assert Path(best.file).name == films[0].name


def test_predict_with_heatmaps_ood_reports_and_orientation_then_evaluate(films, embeddings, tmp_path):
    # the OOD detector, fitted as `cxr ood-fit` does: reference films' features, a validation threshold
    _, reference, meta = cxrkit.embed.read_embeddings(embeddings)
    rng = np.random.default_rng(0)  # six films are too few for a validation set: jittered copies stand in
    validation = reference[rng.integers(0, len(reference), 24)] * rng.uniform(0.95, 1.05, (24, reference.shape[1]))
    info = {key: meta.get(key) for key in ("model", "architecture", "weights_sha256", "precision")}
    detector = cxrkit.embed.OodDetector.fit(reference, validation, k=2, quantile=0.9, info=info)
    detector_file = detector.save(tmp_path / "demo.ood.safetensors")

    film = FilmSteps(orientation=OrientationFixer(cxrkit.create_model("resnet18.nih-orientation")))
    predictor = cxrkit.predict.Predictor(cxrkit.models.DEFAULT_MODEL, precision="fp32", film=film)
    out, maps, reports = tmp_path / "predictions.csv", tmp_path / "maps", tmp_path / "sr"
    summary = cxrkit.predict.predict_to_file(
        films, predictor, out,
        heatmaps=cxrkit.explain.Heatmaps(maps, method="gradcam", labels=["Effusion"], raw=True),
        ood=cxrkit.embed.Ood(detector_file), reports=cxrkit.dicom.Reports(reports), batch_size=4)
    assert (summary.ok, summary.failed, summary.skipped) == (7, 0, 0)

    rows = _rows(out)
    assert [Path(r["file"]).name for r in rows] == [f.name for f in films]
    header = list(rows[0])
    assert header[:3] == ["file", "status", "error"]
    for column in ("Effusion", "Cardiomegaly", "orientation", "ood_score", "ood", "heatmaps", "dicom_sr"):
        assert column in header, column
    for row in rows:
        assert row["status"] == "ok" and not row["error"]
        scores = [float(row[label]) for label in ("Effusion", "Cardiomegaly", "Pneumothorax", "Mass")]
        assert all(0.0 <= s <= 1.0 for s in scores), scores
        assert row["orientation"]  # the fixer looked at every film
        assert float(row["ood_score"]) >= 0.0 and row["ood"] in ("0", "1")
        drawn = row["heatmaps"].split(";")
        assert len(drawn) == 1 and Path(drawn[0]).is_file() and ".Effusion." in Path(drawn[0]).name
        assert np.load(Path(drawn[0]).with_suffix(".npy")).ndim == 2  # the raw map beside the overlay
    # the films are the detector's reference films, upright already: the run scores the features embedded above
    expected = detector.score(reference)
    assert np.allclose([float(r["ood_score"]) for r in rows], expected, atol=1e-3)
    assert [r["ood"] for r in rows] == [str(int(s > detector.threshold)) for s in expected]
    by_name = {Path(r["file"]).name: r for r in rows}
    assert by_name["siim_chest_pa.dcm"]["dicom_sr"].endswith(".dcm") and Path(by_name["siim_chest_pa.dcm"]["dicom_sr"]).is_file()
    assert by_name["00001036_000.png"]["dicom_sr"].startswith("not written: not a DICOM file")

    run = cxrkit.evaluate.evaluate_file_to_folder(out, cxrkit.evaluate.LabelFile(EXAMPLES / "labels.csv", "nih"),
                                                  tmp_path / "report", scoring=cxrkit.evaluate.Scoring(n_bootstrap=20),
                                                  plots=False)
    assert (run.output / "metrics.csv").is_file() and (run.output / "report.md").is_file()
    metrics = _rows(run.output / "metrics.csv")
    assert metrics, "no metric rows"
    aucs = [float(m["auc"]) for m in metrics if m.get("auc") not in (None, "", "nan")]
    assert aucs and all(0.0 <= a <= 1.0 for a in aucs), metrics[0]


def test_age_to_file_with_known_ages(films, tmp_path):
    known = cxrkit.age.AgeTable(EXAMPLES / "labels.csv", id_column="Image Index", age_column="Patient Age")
    out = tmp_path / "ages.jsonl"
    summary = cxrkit.age.age_to_file(films, cxrkit.age.AgeEstimator(precision="fp32"), out, known=known, batch_size=4)
    assert (summary.ok, summary.failed) == (7, 0)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["file"]).name for r in rows] == [f.name for f in films]
    for row in rows:
        assert row["status"] == "ok" and 0 < row["cxr_age"] < 120
        assert row["chronological_age"] is not None  # the CSV for the PNGs, the header for the DICOM
        assert math.isclose(row["age_gap"], row["cxr_age"] - row["chronological_age"], abs_tol=1e-6)
    assert {r["chronological_age"] for r in rows if r["file"].endswith("00001036_000.png")} == {35.0}
