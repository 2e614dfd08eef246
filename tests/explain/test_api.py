"""The explain API's keyword arguments: a model by name or module, film steps, files, names that survive --resume."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrkit.explain import (
    ExplainError,
    HeatmapWriter,
    default_output,
    explain,
    explain_grid,
    explain_to_files,
    parse_label_spec,
    prepare_film,
)
from cxrkit.models import create, load_model
from cxrkit.preprocess import FilmSteps, OrientationFixer


@pytest.mark.slow
def test_a_weight_file_name_gives_the_same_map_as_its_module(tiny_densenet_file, example_images):
    by_name = explain(str(tiny_densenet_file), example_images[0], "Effusion", "cam")
    by_module = explain(create(str(tiny_densenet_file)), example_images[0], "Effusion", "cam")
    assert by_name.label == "Effusion" and by_name.score == pytest.approx(by_module.score, abs=1e-6)
    assert np.allclose(by_name.array, by_module.array, atol=1e-5)
    assert by_name.film is not None and by_name.film.pixels.shape == by_name.array.shape


@pytest.mark.slow
def test_explaining_leaves_a_training_model_training(square_model, image):
    square_model.train()
    try:
        explain(square_model, image, "Mass", "gradcam")
        assert square_model.training and all(p.requires_grad for p in square_model.parameters())
    finally:
        square_model.eval()


def test_film_steps_turn_the_film_before_the_map_is_made(square_model, image, always_rot90):
    """An orientation model that calls every film rot90: the map lies on the turned film (W x H)."""
    steps = FilmSteps(orientation=OrientationFixer(load_model(str(always_rot90), default="unused")))
    heat = explain(square_model, image, "Mass", "cam", film=steps)
    assert heat.array.shape == image.shape[::-1] == heat.film.pixels.shape
    assert heat.meta["film"]["orientation"] == "rot90" and heat.meta["cleaned"] is False
    assert heat.meta["original_shape"] == image.shape[::-1]
    assert explain(square_model, image, "Mass", "cam").array.shape == image.shape  # no steps: the film as given


def test_grid_prepares_the_film_once(square_model, image):
    calls = []

    class Counting(FilmSteps):
        def prepare(self, decoded):
            calls.append(1)
            return super().prepare(decoded)

    maps = explain_grid(square_model, image, ["Mass", "Nodule"], ["cam", "gradcam"], film=Counting())
    assert len(maps) == 4 and len(calls) == 1 and all(m.film is maps[0].film for m in maps)
    with pytest.raises(ExplainError, match="does not take"):  # options are checked before any work
        explain_grid(square_model, image, ["Mass"], ["cam"], {"cam": {"samples": 3}})


def test_explain_to_files_writes_the_overlay_raw_map_and_summary(square_model, image, tmp_path):
    out, raw = tmp_path / "one.png", tmp_path / "one.npy"
    report = explain_to_files(square_model, image, methods=["cam"], output=out, raw=raw)
    assert report["output"] == str(out) and report["model"] == "test.square" and report["maps"][0]["label"] == "Mass"
    assert np.load(raw).shape == image.shape and cv2.imread(str(out)).shape[1] == image.shape[1]
    with pytest.raises(ExplainError, match="contact sheet"):
        explain_to_files(square_model, image, labels=["Mass", "Nodule"], output=out)
    with pytest.raises(ExplainError, match="name the output"):
        explain_to_files(square_model, image)
    assert default_output("a/chest.dcm", ["gradcam++"], grid=False) == Path("chest.gradcampp.png")
    assert default_output("a/chest.dcm", ["cam"], grid=True) == Path("chest.grid.png")


def test_heatmap_names_do_not_depend_on_which_rows_are_already_done(square_model, image, tmp_path):
    """Two films with one stem: planned from the whole input list, each keeps its name when the
    run is resumed after the first one was done (a fresh writer that never sees it)."""
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    for path in (first, second):
        path.parent.mkdir()
        cv2.imwrite(str(path), image)
    whole = HeatmapWriter(square_model, tmp_path / "maps", method="cam", labels=["Mass"], files=[first, second])
    names = [whole(f, {})[0].name for f in (first, second)]
    resumed = HeatmapWriter(square_model, tmp_path / "maps", method="cam", labels=["Mass"], files=[first, second])
    assert resumed(second, {})[0].name == names[1] != names[0] == "x.Mass.cam.png"
    assert not list((tmp_path / "maps").glob(".*"))  # no temporary file left behind


def test_library_errors_name_no_command_line_flag(square_model):
    for call in (lambda: parse_label_spec(" , "),
                 lambda: HeatmapWriter(square_model, "unused", labels=["Hernia"])):
        with pytest.raises(ExplainError) as caught:
            call()
        assert "--" not in str(caught.value)


def test_prepare_film_cleans_a_bordered_film(image):
    bordered = np.pad(image, ((30, 0), (0, 50)))
    scan = prepare_film(bordered, FilmSteps(clean=True, shortest=None))
    assert scan.pixels.shape == image.shape and scan.maxval == 255.0 and scan.meta["cleaned"] is True
