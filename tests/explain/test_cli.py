"""`cxr explain` writes an overlay, the raw map and a grid; `cxr predict --heatmaps` writes and records overlays."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cxrkit.cli.explain import explain as explain_command
from cxrkit.cli.main import app as cxr_app

runner = CliRunner()

# The lead registers the command in cli/main.py; tests use their own group so they do not depend on that.
app = typer.Typer()
app.callback()(lambda: None)
app.command("explain")(explain_command)


def test_explain_writes_overlay_and_raw_map(tiny_densenet_file, example_images, tmp_path):
    image = example_images[0]
    out, raw = tmp_path / "o.png", tmp_path / "map.npy"
    result = runner.invoke(app, ["explain", str(image), "-m", str(tiny_densenet_file), "--label", "Effusion",
                                 "-o", str(out), "--raw", str(raw), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["maps"][0]["label"] == "Effusion" and report["output"] == str(out)
    png = cv2.imread(str(out))
    heat = np.load(raw)
    original = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    assert heat.shape == original.shape[:2] and heat.dtype == np.float32
    assert png.shape[1] == original.shape[1] and png.shape[0] > original.shape[0]


def test_explain_grid_of_methods(tiny_densenet_file, example_images, tmp_path):
    out, raw = tmp_path / "grid.png", tmp_path / "grid.npy"
    args = ["explain", str(example_images[1]), "-m", str(tiny_densenet_file), "--method", "cam", "--method", "gradcam",
            "--label", "top", "--label", "Mass", "--grid", "--height", "128", "-o", str(out), "--raw", str(raw)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(out)).shape[1] == 5 * 128 + 4 * 6  # the image + 2 labels x 2 methods
    assert np.load(raw).shape[0] == 4


def test_explain_flags_are_checked(tiny_densenet_file, example_images):
    from cxrkit.errors import CxrkitError

    result = runner.invoke(app, ["explain", str(example_images[0]), "-m", str(tiny_densenet_file), "--method", "cam", "--method", "lime"])
    assert isinstance(result.exception, CxrkitError) and "--grid" in str(result.exception)
    result = runner.invoke(app, ["explain", str(example_images[0]), "-m", str(tiny_densenet_file), "--method", "magic"])
    assert isinstance(result.exception, CxrkitError) and "unknown method" in str(result.exception)


def test_predict_heatmaps_one_overlay_per_image_and_label(tiny_densenet_file, example_images, tmp_path):
    out, folder = tmp_path / "pred.csv", tmp_path / "maps"
    files = [str(p) for p in example_images[:2]]
    result = runner.invoke(cxr_app, ["predict", *files, "-m", str(tiny_densenet_file), "-o", str(out),
                                     "--heatmaps", str(folder), "--heatmap-method", "cam"])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for row in rows:
        paths = row["heatmaps"].split(";")
        assert len(paths) == 3 and all(Path(p).is_file() for p in paths)
        scores = {k: float(v) for k, v in row.items() if k not in ("file", "status", "error", "heatmaps") and v}
        best = sorted(scores, key=scores.get, reverse=True)[:3]
        assert [Path(p).name.split(".")[1] for p in paths] == [b.replace(" ", "_") for b in best]
        assert all(Path(p).name.startswith(Path(row["file"]).stem) for p in paths)
    assert len(list(folder.glob("*.png"))) == 6

    named = tmp_path / "named.csv"
    result = runner.invoke(cxr_app, ["predict", files[0], "-m", str(tiny_densenet_file), "-o", str(named),
                                     "--heatmaps", str(tmp_path / "m2"), "--heatmap-labels", "Effusion,Mass"])
    assert result.exit_code == 0, result.output
    with open(named, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert [Path(p).name.split(".")[1] for p in row["heatmaps"].split(";")] == ["Effusion", "Mass"]


def test_predict_without_heatmaps_has_no_extra_column(tiny_densenet_file, example_images, tmp_path):
    out = tmp_path / "pred.csv"
    result = runner.invoke(cxr_app, ["predict", str(example_images[0]), "-m", str(tiny_densenet_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "heatmaps" not in out.read_text().splitlines()[0]


def _bordered_film(example_images, folder: Path) -> Path:
    """An example film inside a wide uniform border, as a scanned film looks: --clean-film trims
    the border and resizes, so the film as scored differs in size from the file."""
    film = cv2.imread(str(example_images[-1]), cv2.IMREAD_UNCHANGED)
    path = folder / "bordered.png"
    cv2.imwrite(str(path), cv2.copyMakeBorder(film, 60, 20, 100, 0, cv2.BORDER_CONSTANT, value=0))
    return path


@pytest.mark.slow
def test_predict_heatmaps_with_clean_film_draw_on_the_film_as_scored(tiny_densenet_file, example_images, tmp_path):
    from cxrkit.explain import explain, render_overlay
    from cxrkit.io import read_image
    from cxrkit.predict import Predictor
    from cxrkit.preprocess import FilmSteps, clean_film

    films = [str(_bordered_film(example_images, tmp_path)), str(example_images[0])]
    base = ["predict", *films, "-m", str(tiny_densenet_file), "--clean-film"]
    plain, drawn = tmp_path / "plain.csv", tmp_path / "drawn.csv"
    result = runner.invoke(cxr_app, [*base, "-o", str(plain)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cxr_app, [*base, "-o", str(drawn), "--heatmaps", str(tmp_path / "maps"),
                                     "--heatmap-method", "cam", "--heatmap-labels", "Effusion"])
    assert result.exit_code == 0, result.output
    with open(plain, newline="") as handle:
        without = list(csv.DictReader(handle))
    with open(drawn, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [{k: v for k, v in row.items() if k != "heatmaps"} for row in rows] == without  # the maps change no score
    for row in rows:
        decoded = read_image(row["file"])
        cleaned = clean_film(decoded.pixels, decoded.maxval)
        png = cv2.imread(row["heatmaps"])
        # built as the run's: the backend cxr predict picks (torch: channels-last; ONNX Runtime on a
        # CPU without AMX: the module as loaded) decides its memory layout, so equal to the bit
        network = Predictor(str(tiny_densenet_file), backend="auto").model
        heat = explain(network, row["file"], "Effusion", "cam", film=FilmSteps(clean=True))
        assert heat.array.shape == cleaned.shape and np.array_equal(heat.film.pixels, cleaned)
        assert png.shape[1] == cleaned.shape[1] and png.shape[0] > cleaned.shape[0]  # the film, then the caption
        assert np.array_equal(png, render_overlay(cleaned, 255.0, heat))
    assert cv2.imread(rows[0]["heatmaps"]).shape[1] != cv2.imread(films[0]).shape[1]  # not the file's own size


def test_explain_command_with_clean_film(tiny_densenet_file, example_images, tmp_path):
    film = _bordered_film(example_images, tmp_path)
    out, raw = tmp_path / "o.png", tmp_path / "map.npy"
    result = runner.invoke(app, ["explain", str(film), "-m", str(tiny_densenet_file), "--clean-film", "--method", "cam",
                                 "-o", str(out), "--raw", str(raw)])
    assert result.exit_code == 0, result.output
    cleaned_width = np.load(raw).shape[1]
    assert cleaned_width != cv2.imread(str(film)).shape[1] and cv2.imread(str(out)).shape[1] == cleaned_width
