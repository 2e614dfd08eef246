"""The three model runners (Predictor, AgeEstimator, Embedder) take their film steps when built, and the
engine reads them from the declared ``film`` attribute of the runner protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrkit.age import AgeEstimator
from cxrkit.embed import Embedder
from cxrkit.io import read_image
from cxrkit.models import ModelCard, create, load_model, save_weights
from cxrkit.predict import Predictor, Runner, output_columns
from cxrkit.preprocess import FilmSteps, OrientationFixer


@pytest.fixture(scope="module")
def age_file(tmp_path_factory):
    torch.manual_seed(0)
    model = create("resnet18", num_classes=1)
    card = ModelCard(name="resnet18.test-age", architecture="resnet18", labels=["age"], input_size=48,
                     task="regression", provenance={"source": "random initialisation (test fixture)"})
    path = tmp_path_factory.mktemp("age") / "age.safetensors"
    save_weights(model, card, path)
    return path


@pytest.fixture(scope="module")
def turning(always_rot90) -> FilmSteps:
    """Film steps that turn every film a quarter turn (their model always answers rot90)."""
    return FilmSteps(orientation=OrientationFixer(load_model(str(always_rot90), default="unused")))


def _runners(tiny_model_file, age_file, film):
    return [Predictor(str(tiny_model_file), precision="fp32", film=film),
            AgeEstimator(str(age_file), precision="fp32", film=film),
            Embedder(str(tiny_model_file), precision="fp32", film=film)]


def test_each_runner_takes_its_film_steps_when_built(tiny_model_file, age_file, turning, example_images):
    image = read_image(example_images[0])
    for runner in _runners(tiny_model_file, age_file, turning):
        assert isinstance(runner, Runner) and runner.film is turning
        columns = output_columns(runner)
        assert columns[:len(turning.columns)] == turning.columns and columns[len(turning.columns):] == runner.columns
        _, info = runner.prepare(image)
        assert info["orientation"] == "rot90"  # prepare ran the steps it was given


def test_without_film_steps_each_runner_applies_none(tiny_model_file, age_file, example_images):
    image = read_image(example_images[0])
    for runner in _runners(tiny_model_file, age_file, None):
        assert runner.film == FilmSteps() and output_columns(runner) == runner.columns
        _, info = runner.prepare(image)
        assert "orientation" not in info


def test_a_runner_declares_its_film_steps():
    """``film`` is part of the protocol: an object without it is not driven as a runner."""

    class Bare:
        columns = ["x"]

        def prepare(self, image):
            return np.zeros((1, 2, 2), np.float32), {}

        def predict_batch(self, inputs):
            return np.zeros((len(inputs), 1))

    class Declared(Bare):
        film = None

    assert not isinstance(Bare(), Runner)
    assert isinstance(Declared(), Runner) and output_columns(Declared()) == ["x"]


def test_the_runners_share_one_set_up(tiny_model_file, age_file):
    from cxrkit.predict.model_runner import ModelRunner

    for runner in _runners(tiny_model_file, age_file, None):
        assert isinstance(runner, ModelRunner)
        assert runner.device == torch.device("cpu") and runner.precision == "fp32"
        assert runner.input_size == runner.card.input_size == runner.model.card.input_size
        assert runner.card.name in ("densenet121.test-tiny", "resnet18.test-age")


def test_the_whole_file_jobs_run_the_film_steps_their_runner_was_built_with(tiny_model_file, age_file, turning,
                                                                             example_images, tmp_path):
    """``predict_to_file`` / ``age_to_file`` / ``embed_to_file`` take no film steps of their own: the
    runner's are the one way, and the runner passed in is used as built (not changed)."""
    from cxrkit.age import age_to_file
    from cxrkit.embed import embed_to_file
    from cxrkit.predict import predict_to_file

    files = example_images[:2]
    predictor, estimator, embedder = _runners(tiny_model_file, age_file, turning)
    jobs = [(predict_to_file, predictor, "p.csv"), (age_to_file, estimator, "a.csv"), (embed_to_file, embedder, "e.csv")]
    for job, runner, name in jobs:
        summary = job(files, runner, tmp_path / name)
        assert (summary.ok, summary.failed) == (2, 0) and runner.film is turning
        with open(tmp_path / name) as table:
            header, *rows = [line.rstrip("\n").split(",") for line in table]
        assert header[3:3 + len(turning.columns)] == turning.columns, job.__name__
        assert all(row[header.index("orientation")] == "rot90" for row in rows), job.__name__
        with pytest.raises(TypeError):
            job(files, runner, tmp_path / f"again-{name}", film=turning)


def test_ray_engine_gives_this_process_its_film_steps_on_the_preparing_device(tiny_model_file, turning):
    from cxrkit.predict import preparing_device, ray_engine

    assert preparing_device(None, "cuda") == "cuda" and preparing_device("local", "cuda") == "cpu"
    assert preparing_device("local", "cpu") == "cpu"
    engine, predictor = ray_engine(None, str(tiny_model_file), precision="fp32", film=turning)
    assert engine is None and predictor.film is turning and predictor.device.type == "cpu"


def _same(a: dict, b: dict) -> bool:
    """Equal row fields, NaN (a label the model was not trained on) equal to NaN."""
    return list(a) == list(b) and all(x == y or (isinstance(x, float) and np.isnan(x) and np.isnan(y))
                                      for x, y in zip(a.values(), b.values(), strict=True))


def test_run_is_the_one_verb_for_one_film_and_gives_the_engines_row(tiny_model_file, age_file, turning,
                                                                     example_images):
    from cxrkit.predict import predict_files

    path = example_images[0]
    for runner in _runners(tiny_model_file, age_file, turning):
        fields = runner.run(path)
        row = next(iter(predict_files([path], runner, batch_size=1)))
        names = list(fields)
        assert names[:len(turning.columns)] == turning.columns and fields["orientation"] == "rot90"
        assert names[-len(runner.columns):] == runner.columns
        assert _same(fields, {k: row[k] for k in fields}), type(runner).__name__
        assert _same(runner.run(read_image(path)), fields)  # a decoded film gives the same
    estimate = _runners(tiny_model_file, age_file, None)[1].estimate(path, chronological_age=40)
    assert estimate.chronological_age == 40.0 and np.isfinite(estimate.cxr_age)


def test_film_steps_from_settings_are_the_steps_an_embedding_table_stores(tiny_model_file, always_rot90, example_images):
    """``film_steps`` turns plain settings (flags, a table's stored ``film``) into steps; an Embedder's
    metadata read back through it gives steps that do what the original ones did."""
    from cxrkit.errors import InvalidArgument
    from cxrkit.predict import film_steps

    original = Embedder(str(tiny_model_file), precision="fp32",
                        film=FilmSteps(clean=True, orientation=OrientationFixer(load_model(str(always_rot90), default="unused"),
                                                                                mirror=True)))
    stored = original.metadata()["film"]
    assert set(stored) == {"clean", "orientation_model", "mirror"}  # film_steps' keywords
    # the table names the orientation model by its card; this test model is a file, so its path stands in
    rebuilt = film_steps(**{**stored, "orientation_model": str(always_rot90)}, device="cpu")
    assert rebuilt.clean and rebuilt.orientation is not None and rebuilt.orientation.mirror
    image = read_image(example_images[0])
    pixels, maxval, info = rebuilt.prepare(image)
    expected_pixels, expected_maxval, expected_info = original.film.prepare(image)
    assert info == expected_info and info["orientation"] == "rot90" and maxval == expected_maxval == 255.0
    assert np.array_equal(pixels, expected_pixels)
    assert film_steps() == FilmSteps()
    with pytest.raises(InvalidArgument, match="orientation model"):
        film_steps(mirror=True)
