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
