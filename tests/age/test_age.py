"""Chest X-ray age: TTA geometry and blend, determinism, known ages, and the `cxr age` command."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cxrkit.age import TTA_BLEND, AgeEstimator, AgeTable, tta_views
from cxrkit.cli.main import app
from cxrkit.errors import CxrkitError
from cxrkit.io import read_image
from cxrkit.models import create
from cxrkit.preprocess import model_input, normalize, resize

runner = CliRunner()


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_tta_views_are_the_plain_film_then_eight_fixed_corner_zooms():
    rng = np.random.default_rng(0)
    film = rng.integers(0, 4096, size=(120, 100)).astype(np.uint16)  # portrait: centre square is rows 10..110
    views = tta_views(film, 4095, 32)
    assert views.shape == (9, 1, 32, 32) and views.dtype == np.float32
    np.testing.assert_array_equal(views[0], model_input(film, 4095, 32))
    square = film[10:110, :]
    side = round(100 / 1.35)  # 74
    top_left = normalize(resize(square[:side, :side], 32), 4095)
    bottom_left = normalize(resize(square[100 - side:, :side], 32), 4095)
    top_right = normalize(resize(square[:side, 100 - side:], 32), 4095)
    np.testing.assert_allclose(views[1, 0], top_left, rtol=0, atol=1e-3)
    np.testing.assert_allclose(views[2, 0], bottom_left, rtol=0, atol=1e-3)
    np.testing.assert_allclose(views[3, 0], top_right, rtol=0, atol=1e-3)
    for j in range(4):  # views 5..8 are the mirror images of views 1..4
        np.testing.assert_array_equal(views[5 + j, 0], views[1 + j, 0][:, ::-1])
    assert len({views[i].tobytes() for i in range(9)}) == 9
    assert tta_views(film, 4095, 32, tta=False).shape == (1, 1, 32, 32)


@pytest.mark.slow
def test_estimate_blends_plain_and_zoom_views_and_is_deterministic(age_model_file, example_images):
    estimator = AgeEstimator(str(age_model_file), tta=True, precision="fp32")
    image = read_image(example_images[0])
    with torch.no_grad():
        ages = estimator.model(torch.from_numpy(tta_views(image.pixels, image.maxval, 64)))[:, 0].numpy()
    expected = TTA_BLEND * ages[0] + (1 - TTA_BLEND) * ages[1:].mean()
    first = estimator.estimate(image)
    assert first.cxr_age == pytest.approx(expected, abs=1e-4)
    assert first.sd == pytest.approx(ages[1:].std(ddof=1), abs=1e-4) and first.sd > 0
    assert estimator.estimate(example_images[0]) == first  # same file, same number, every time
    plain = AgeEstimator(str(age_model_file), precision="fp32").estimate(image, chronological_age=35)
    assert plain.cxr_age == pytest.approx(ages[0], abs=1e-4) and np.isnan(plain.sd)
    assert plain.age_gap == pytest.approx(plain.cxr_age - 35)


def test_a_classifier_is_not_an_age_model():
    with pytest.raises(CxrkitError, match="not an age model"):
        AgeEstimator(create("resnet18"))


def test_age_table_reads_years_dicom_ages_and_refuses_bad_values(tmp_path):
    table = tmp_path / "ages.csv"
    table.write_text("file,age\n/data/a/x.png,61\nb/y.dcm,061Y\nz.png,6.5\n/d1/same.png,40\n/d2/same.png,41\nempty.png,\n")
    ages = AgeTable(table)
    assert ages.get("/data/a/x.png") == 61 and ages.get("/elsewhere/x.png") == 61  # by file name when unique
    assert ages.get("b/y.dcm") == 61 and ages.get("z.png") == 6.5
    assert ages.get("/d1/same.png") == 40 and ages.get("/d3/same.png") is None  # ambiguous name: no guess
    assert ages.get("empty.png") is None and len(ages) == 5
    table.write_text("file,age\nx.png,sixty\n")
    with pytest.raises(CxrkitError, match=r"ages.csv:2: age 'sixty'"):
        AgeTable(table)
    with pytest.raises(CxrkitError, match="`age_column`"):
        AgeTable(table, age_column="Patient Age")


@pytest.mark.slow
def test_cli_age_rows_gap_errors_and_determinism(age_model_file, example_images, tmp_path):
    folder = tmp_path / "films"
    folder.mkdir()
    for path in example_images:
        shutil.copy(path, folder / path.name)
    shutil.copy(example_images[0].parent / "siim_chest_pa.dcm", folder / "siim_chest_pa.dcm")  # header: 062Y
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    labels = example_images[0].parent / "labels.csv"  # the NIH label rows of the example films
    out = tmp_path / "ages.csv"
    args = ["age", str(folder), "--model", str(age_model_file), "--tta", "--metadata", str(labels),
            "--metadata-id", "Image Index", "--metadata-age", "Patient Age", "--batch-size", "3"]
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 3, result.output
    rows = _rows(out)
    assert list(rows[0]) == ["file", "status", "error", "cxr_age", "cxr_age_sd", "chronological_age", "age_gap"]
    assert len(rows) == len(example_images) + 2
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in rows}
    broken = by_name.pop("broken.png")
    assert broken["status"] == "error" and broken["error"] and broken["cxr_age"] == ""
    assert by_name["siim_chest_pa.dcm"]["chronological_age"] == "62"
    assert by_name["00001036_000.png"]["chronological_age"] == "35"
    for row in by_name.values():
        assert row["status"] == "ok" and float(row["cxr_age_sd"]) > 0
        gap = float(row["cxr_age"]) - float(row["chronological_age"])
        assert float(row["age_gap"]) == pytest.approx(gap, abs=1e-3)
    again = tmp_path / "again.csv"
    assert runner.invoke(app, [*args, "-o", str(again)]).exit_code == 3
    assert again.read_text() == out.read_text()  # deterministic, byte for byte


def test_cli_age_saliency_maps(age_model_file, example_images, tmp_path):
    maps = tmp_path / "maps"
    out = tmp_path / "ages.csv"
    result = runner.invoke(app, ["age", *map(str, example_images[:2]), "--model", str(age_model_file),
                                 "--saliency", str(maps), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert list(rows[0])[-1] == "saliency"
    for row in rows:
        paths = row["saliency"].split(";")
        assert len(paths) == 1 and paths[0].endswith(".png")
        assert (maps / paths[0].rsplit("/", 1)[-1]).is_file()
    result = runner.invoke(app, ["age", str(example_images[0]), "--model", str(age_model_file),
                                 "--saliency", str(maps), "--clean-film"])
    assert result.exit_code == 1 and "not supported" in result.output


def test_tta_views_of_every_example_film(example_images):
    """Area-resizing a corner crop can land a hair above the white level (00001968_000.png
    gave 255.00003); that is rounding, not a wrong white level, and must not fail the film."""
    for path in example_images:
        image = read_image(path)
        views = tta_views(image.pixels, image.maxval, 224)
        assert np.isfinite(views).all() and views.max() <= 1024.01 and views.min() >= -1024.01
    with pytest.raises(ValueError, match="white level"):
        normalize(np.array([[256.0]], dtype=np.float32), 255)
    assert normalize(np.array([[255.00003]], dtype=np.float32), 255).max() == pytest.approx(1024.0, abs=1e-3)


def test_age_estimator_is_a_runner_the_engine_drives(age_model_file, example_images):
    from cxrkit.predict import Runner, predict_files

    estimator = AgeEstimator(str(age_model_file), tta=True, precision="fp32")
    assert isinstance(estimator, Runner) and estimator.precision == "fp32"
    rows = list(predict_files(example_images[:3], estimator, batch_size=2))
    for row, path in zip(rows, example_images[:3], strict=True):
        direct = estimator.estimate(path)
        assert row["status"] == "ok"
        assert row["cxr_age"] == pytest.approx(direct.cxr_age, abs=1e-4)
        assert row["cxr_age_sd"] == pytest.approx(direct.sd, abs=1e-4)
