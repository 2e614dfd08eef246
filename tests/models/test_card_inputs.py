"""The card drives preprocessing: typed input fields checked by ``validate``, and ``card.transforms()``
reproducing :func:`cxrkit.preprocess.model_input` bit for bit on real films."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from cxrkit.errors import WeightsError
from cxrkit.io import XrayImage, read_image
from cxrkit.models import ModelCard, create, published
from cxrkit.models.card import NORMALIZATION, InputSpec
from cxrkit.predict import Predictor
from cxrkit.preprocess import ModelInput, model_input

BUNDLED = sorted((Path(__file__).resolve().parents[2] / "src" / "cxrkit" / "models" / "weights").glob("*.json"))


def _card(**changes) -> ModelCard:
    fields = {"name": "densenet121.test", "architecture": "densenet121", "labels": ["Effusion"], "input_size": 224}
    return ModelCard(**{**fields, **changes})


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_cards_load_unchanged_with_their_typed_input(path):
    stored = json.loads(path.read_text(encoding="utf-8"))
    card = ModelCard.load(path)
    assert card.to_dict() == stored  # the same keys and values come back out: nothing added or rewritten
    assert card.preprocessing == InputSpec(size=stored["input_size"], crop=True, channels=1,
                                           value_range=(-1024.0, 1024.0))
    assert card.transforms() == ModelInput(stored["input_size"], crop=True)


def test_torchxrayvision_cards_keep_the_published_input_size():
    """Cards made from the published TorchXRayVision table (as import_xrv writes them) are valid, 224 or 512 px."""
    sizes = set()
    for xrv_name in published.names():
        entry = published.get(xrv_name)
        card = _card(name=entry["cxrkit_name"], input_size=int(entry["input_size"])).validate()
        sizes.add(card.preprocessing.size)
        assert card.transforms() == ModelInput(int(entry["input_size"]))
    assert sizes == {224, 512}


@pytest.mark.parametrize(("normalization", "problem"), [
    ({"range": [0.0, 1.0]}, "range must be"),
    ({"channels": 3}, "channels must be 1"),
    ({"crop": "random"}, "crop must be one of"),
    ({"crop": ["center-square"]}, "crop must be one of"),
    ({"formula": "x / 255"}, "formula"),
    ({"resize": "nearest"}, "resize"),
    ({"mean": 0.5}, "unknown keys ['mean']"),
])
def test_validate_refuses_an_input_contract_the_transform_cannot_honour(normalization, problem):
    card = _card(normalization={**NORMALIZATION, **normalization})
    with pytest.raises(WeightsError, match="invalid") as raised:
        card.validate()
    assert problem in str(raised.value)
    with pytest.raises(WeightsError):
        card.transforms()


@pytest.mark.parametrize("size", [0, -3, 22.5, "224", True])
def test_validate_refuses_a_bad_input_size(size):
    with pytest.raises(WeightsError, match="input_size must be a positive int"):
        _card(input_size=size).validate()


def test_uncropped_card_and_partial_normalization():
    """``crop: none`` squeezes the whole film; keys a card leaves out take the contract's values."""
    card = _card(input_size=32, normalization={"crop": "none"}).validate()
    assert card.preprocessing.crop is False and card.transforms() == ModelInput(32, crop=False)
    film = np.arange(40 * 60, dtype=np.uint16).reshape(40, 60)
    assert np.array_equal(card.transforms()(film, 4095.0), model_input(film, 4095.0, 32, crop=False))
    assert not np.array_equal(card.transforms()(film, 4095.0), model_input(film, 4095.0, 32))


def test_the_transform_pickles_for_worker_processes():
    transform = _card(input_size=128).transforms()
    assert pickle.loads(pickle.dumps(transform)) == transform and "128" in repr(transform)


def test_card_transforms_is_bit_identical_to_model_input_on_real_films(shared_data):
    """NIH PNGs (8-bit, 1024 px) and DICOMs of several bit depths and shapes, at every bundled card's size."""
    images = sorted((shared_data / "nih" / "images").glob("*.png"))[:6]
    dicoms = [shared_data / "dicom" / name for name in ("RG1_JLSN.dcm", "RG2_JPLL.dcm", "RG3_J2KR.dcm")]
    films = []
    for path in images + [d for d in dicoms if d.exists()]:
        try:
            films.append(read_image(path))
        except Exception as exc:  # a codec this machine lacks: the PNGs still cover the check
            print(f"skipped {path.name}: {exc}")
    assert len(films) >= len(images) >= 6
    cards = [ModelCard.load(path) for path in BUNDLED] + [_card(input_size=512)]
    for card in cards:
        transform = card.transforms()
        for film in films:
            ours, reference = transform(film.pixels, film.maxval), model_input(film.pixels, film.maxval, card.input_size)
            assert ours.dtype == np.float32 and ours.shape == (1, card.input_size, card.input_size)
            assert np.array_equal(ours, reference)  # bit for bit, not within a tolerance


def test_a_runner_prepares_films_as_its_card_says(tiny_model_file, example_images):
    """The same weights, one card cropping and one not: the predictor's input follows the card."""
    square = read_image(example_images[0])
    image = XrayImage(square.pixels[:, :400], square.maxval, square.meta)  # a non-square film: the crop matters
    cropped = Predictor(str(tiny_model_file), precision="fp32")
    model = create(str(tiny_model_file))
    model.card.normalization = {**model.card.normalization, "crop": "none"}
    whole = Predictor(model, precision="fp32")
    assert np.array_equal(cropped.prepare(image)[0], model_input(image.pixels, image.maxval, 64))
    assert np.array_equal(whole.prepare(image)[0], model_input(image.pixels, image.maxval, 64, crop=False))
    assert not np.array_equal(whole.prepare(image)[0], cropped.prepare(image)[0])
