"""`cxr predict --ood`: k-NN feature distance to the training films, threshold from validation films."""

import csv
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.embed import RETRIEVAL_TRIM, Embedder
from cxrkit.embed.ood import OodDetector, detector_path
from cxrkit.errors import CxrkitError
from cxrkit.models import create

pytest.importorskip("pyarrow")
runner = CliRunner()


def test_detector_scores_thresholds_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    centre = rng.normal(size=64)
    films = centre + 0.3 * rng.normal(size=(700, 64))
    outliers = rng.normal(size=(50, 64))
    detector = OodDetector.fit(films[:400], films[400:600], k=5, quantile=0.95, info={"model": "m"})
    assert detector.info["validation_flagged"] == pytest.approx(0.05, abs=0.011)
    assert 0.0 <= detector.flag(films[600:]).mean() < 0.15 and detector.flag(outliers).all()
    # the score is the cosine distance to the 5th nearest reference
    sims = np.sort((outliers[:1] / np.linalg.norm(outliers[:1])) @ detector.reference.T)[0]
    assert detector.score(outliers[:1])[0] == pytest.approx(1 - sims[-5], abs=1e-5)
    loaded = OodDetector.load(detector.save(tmp_path / "d.ood.safetensors"))
    assert loaded.threshold == detector.threshold and loaded.k == 5 and loaded.info == detector.info
    assert np.allclose(loaded.score(outliers), detector.score(outliers), atol=2e-3)  # float16 references
    with pytest.raises(CxrkitError, match="too few"):
        OodDetector.fit(films[:100], films[100:110])
    with pytest.raises(CxrkitError, match="k must"):
        OodDetector(films[:3], threshold=0.1, k=4)


@pytest.mark.slow
def test_predict_ood_uses_one_pass_and_keeps_the_scores(tiny_model_file, example_images, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_file.parent, folder)
    model_file = folder / tiny_model_file.name
    model = create(str(model_file))
    vectors = Embedder(model, precision="fp32").embed_files(example_images)
    rng = np.random.default_rng(1)
    validation = vectors[rng.integers(0, len(vectors), 30)] * rng.uniform(0.9, 1.1, size=(30, vectors.shape[1]))
    detector = OodDetector.fit(vectors, validation, k=2, info={"model": model.card.name,
                                                               "weights_sha256": model.card.sha256})
    detector.save(detector_path(model.card.name, folder))
    args = ["predict", *map(str, example_images), "--model", str(model_file), "--precision", "fp32"]
    plain, flagged = tmp_path / "plain.csv", tmp_path / "ood.csv"
    assert runner.invoke(app, [*args, "-o", str(plain)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(flagged), "--ood"])
    assert result.exit_code == 0, result.output
    plain_rows, ood_rows = list(csv.DictReader(plain.open())), list(csv.DictReader(flagged.open()))
    assert list(ood_rows[0])[-2:] == ["ood_score", "ood"]
    for a, b in zip(plain_rows, ood_rows, strict=True):
        for column in a:
            if column not in ("file", "status", "error") and a[column]:
                assert float(a[column]) == pytest.approx(float(b[column]), abs=1e-5)
    expected = detector.score(vectors)
    assert np.allclose([float(r["ood_score"]) for r in ood_rows], expected, atol=1e-4)
    assert [float(r["ood"]) for r in ood_rows] == [float(s > detector.threshold) for s in expected]


def test_predict_ood_without_a_detector_says_how_to_fit_one(tiny_model_file, example_images, cxrkit_home):
    result = runner.invoke(app, ["predict", str(example_images[0]), "--model", str(tiny_model_file), "--ood"])
    assert result.exit_code == 1 and "cxr ood-fit" in result.output


def _patient_disjoint(shared_data, sizes, seed=0):
    """NIH films in groups of the given sizes, no patient in two groups."""
    rows = list(csv.DictReader((shared_data / "nih" / "Data_Entry_2017_v2020.csv").open()))
    films: dict[str, list] = {}
    for row in rows:
        path = shared_data / "nih" / "images" / row["Image Index"]
        if path.exists():
            films.setdefault(row["Patient ID"], []).append(path)
    patients = sorted(films)
    np.random.default_rng(seed).shuffle(patients)
    groups = []
    for size in sizes:
        group = []
        while len(group) < size:
            group += films[patients.pop()]
        groups.append(group[:size])
    return groups


def _natural_images(folder):
    """Grey photographs and drawings shipped with scikit-image (public-domain/CC0 sample data)."""
    data = pytest.importorskip("skimage.data")
    import cv2

    folder.mkdir()
    for name in ("camera", "coins", "moon", "page", "text", "clock", "brick", "grass", "astronaut", "rocket"):
        image = np.asarray(getattr(data, name)(), dtype=np.float64)
        image = image[..., :3].mean(axis=2) if image.ndim == 3 else image
        cv2.imwrite(str(folder / f"{name}.png"), (255 * (image - image.min()) / np.ptp(image)).astype(np.uint8))
    return sorted(folder.glob("*.png"))


def test_non_chest_inputs_are_flagged_and_chest_films_are_not(shared_data, tmp_path, cxrkit_home):
    """Hip and leg radiographs (DICOM) and photographs vs held-out NIH films, end to end through the CLI.

    The detector for the demonstration DenseNet is fitted on the orientation ResNet-18's
    features (docs/representations.md: they separate far better than the DenseNet's own).
    """
    metrics = pytest.importorskip("sklearn.metrics")
    reference, validation, test = _patient_disjoint(shared_data, (200, 100, 60))
    non_chest = sorted((shared_data / "dicom").glob("RG[23]_*.dcm")) + _natural_images(tmp_path / "natural")
    features = ["--model", "resnet18.nih-orientation", "--precision", "fp32", "--trim", "0"]  # as docs/representations.md
    for name, films in (("ref", reference), ("val", validation)):
        embedded = runner.invoke(app, ["embed", *map(str, films), *features, "-o", str(tmp_path / f"{name}.parquet")])
        assert embedded.exit_code == 0, embedded.output
    fitted = runner.invoke(app, ["ood-fit", "--train", str(tmp_path / "ref.parquet"), "--val", str(tmp_path / "val.parquet"),
                                 "--for", "densenet121.nih-demo"])
    assert fitted.exit_code == 0, fitted.output
    out = tmp_path / "pred.csv"
    predicted = runner.invoke(app, ["predict", *map(str, test + non_chest), "--ood", "--precision", "fp32", "-o", str(out)])
    assert predicted.exit_code == 0, predicted.output
    rows = {r["file"]: r for r in csv.DictReader(out.open())}
    score = np.array([float(rows[str(f)]["ood_score"]) for f in test + non_chest])
    is_out = np.r_[np.zeros(len(test)), np.ones(len(non_chest))]
    assert metrics.roc_auc_score(is_out, score) > 0.97
    flagged = np.array([rows[str(f)]["ood"] == "1" for f in test + non_chest])
    assert flagged[len(test):].mean() >= 0.9 and flagged[:len(test)].mean() <= 0.1
    assert all(rows[str(f)]["Effusion"] != "" for f in test)  # the scores are still there


def test_a_detector_fitted_on_trimmed_films_scores_trimmed_films(tiny_model_file, example_images, tmp_path):
    """Tables from cxr embed's search view (8 % of each side left out) fit a detector that remembers
    the view: predict --ood embeds each film trimmed in a second pass, and the scores are those
    of the trimmed vectors, not of the whole films the classifier sees."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_file.parent, folder)
    model_file = folder / tiny_model_file.name
    model = create(str(model_file))
    trimmed = Embedder(model, precision="fp32", trim=RETRIEVAL_TRIM).embed_files(example_images)
    whole = Embedder(model, precision="fp32").embed_files(example_images)
    assert np.abs(trimmed - whole).max() > 1e-3  # the two views differ, so the check below can fail
    rng = np.random.default_rng(1)
    validation = trimmed[rng.integers(0, len(trimmed), 30)] * rng.uniform(0.9, 1.1, size=(30, trimmed.shape[1]))
    detector = OodDetector.fit(trimmed, validation, k=2, info={"model": model.card.name, "trim": RETRIEVAL_TRIM,
                                                               "weights_sha256": model.card.sha256})
    detector.save(detector_path(model.card.name, folder))
    out = tmp_path / "ood.csv"
    result = runner.invoke(app, ["predict", *map(str, example_images), "--model", str(model_file), "--precision", "fp32",
                                 "-o", str(out), "--ood"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert np.allclose([float(r["ood_score"]) for r in rows], detector.score(trimmed), atol=1e-4)
    assert not np.allclose([float(r["ood_score"]) for r in rows], detector.score(whole), atol=1e-4)


def test_fit_tables_remembers_the_weights_and_view_and_refuses_mixed_tables(tiny_model_file, example_images, tmp_path):
    """What `cxr ood-fit` runs: two cxr embed tables in, a detector that knows which weights and view made them."""
    import cv2

    from cxrkit.embed import embed_to_file
    from cxrkit.errors import InvalidInput

    copies = []
    for i in range(21):  # 20 validation films at least place a threshold; slightly brightened copies
        source = example_images[i % 6]
        pixels = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
        copies.append(tmp_path / f"copy{i}.png")
        cv2.imwrite(str(copies[-1]), cv2.convertScaleAbs(pixels, alpha=1.0 + i / 200))
    trimmed = Embedder(str(tiny_model_file), precision="fp32", trim=RETRIEVAL_TRIM)
    embed_to_file(example_images[:6], trimmed, tmp_path / "train.parquet")
    embed_to_file(copies, trimmed, tmp_path / "val.parquet")
    embed_to_file(copies, Embedder(str(tiny_model_file), precision="fp32"), tmp_path / "whole.parquet")

    detector = OodDetector.fit_tables(tmp_path / "train.parquet", tmp_path / "val.parquet", k=2)
    card = trimmed.card
    assert detector.info["trim"] == RETRIEVAL_TRIM and detector.info["n_validation"] == 21
    assert detector.fits(card) and (detector.info["model"], detector.info["weights_sha256"]) == (card.name, card.sha256)
    with pytest.raises(InvalidInput, match="one view"):
        OodDetector.fit_tables(tmp_path / "train.parquet", tmp_path / "whole.parquet", k=2)
