"""Orientations: exact transforms, the fixer's decision rule, and `--fix-orientation` in predict."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.errors import CxrkitError
from cxrkit.io import read_image
from cxrkit.models import ModelCard, create, load_model
from cxrkit.preprocess import (
    DEFAULT_ORIENTATION_MODEL,
    ORIENTATIONS,
    OrientationFixer,
    apply_orientation,
    orientation_accuracy,
    undo_orientation,
)

runner = CliRunner()


def test_the_eight_orientations_are_distinct_and_exactly_undone():
    upright = np.arange(15).reshape(3, 5)
    seen = set()
    for index in range(8):
        turned = apply_orientation(upright, index)
        seen.add((turned.shape, turned.tobytes()))
        np.testing.assert_array_equal(undo_orientation(turned, index), upright)
        as_tensor = apply_orientation(torch.from_numpy(upright)[None], index)
        np.testing.assert_array_equal(as_tensor[0].numpy(), turned)
        np.testing.assert_array_equal(undo_orientation(as_tensor, index)[0].numpy(), upright)
    assert len(seen) == 8
    # rot90 is clockwise: the top-left corner moves to the top-right; flip mirrors left-right
    assert apply_orientation(upright, 1)[0, -1] == upright[0, 0]
    assert apply_orientation(upright, 4)[0, 0] == upright[0, -1]
    with pytest.raises(ValueError):
        apply_orientation(upright, 8)


def test_orientation_accuracy_separates_rotation_and_mirror():
    truth = np.array([0, 0, 1, 5, 2, 6])
    predicted = np.array([0, 4, 1, 1, 3, 6])  # an upright film called mirrored; one mirror missed; one rotation wrong
    scores = orientation_accuracy(truth, predicted)
    assert scores["accuracy_8_orientations"] == pytest.approx(3 / 6)
    assert scores["accuracy_rotation"] == pytest.approx(5 / 6)
    assert scores["accuracy_mirror"] == pytest.approx(4 / 6)
    assert scores["upright_films_mirrored_by_mistake"] == 0.5 and scores["upright_films_rotated_by_mistake"] == 0.0


class _Fixed(nn.Module):
    """An "orientation model" that always answers the same probabilities."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.log(torch.tensor(probs, dtype=torch.float32))
        self.card = ModelCard(name="fixed", architecture="resnet18", labels=list(ORIENTATIONS), input_size=32,
                              task="multiclass")

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_fixer_turns_only_confident_non_upright_films():
    film = np.arange(12 * 20, dtype=np.float32).reshape(12, 20)
    sure_rot90 = [0.02, 0.9] + [0.08 / 6] * 6
    pixels, found = OrientationFixer(_Fixed(sure_rot90)).fix(apply_orientation(film, 1), 239)
    assert found.name == "rot90" and found.corrected and found.row()["orientation_fixed"] == "yes"
    np.testing.assert_array_equal(pixels, film)
    unsure = [0.2, 0.4, 0.2, 0.2, 0, 0, 0, 0]
    pixels, found = OrientationFixer(_Fixed(unsure)).fix(film, 239)
    assert found.name == "rot90" and not found.corrected and pixels is film
    mirrored = [0.1, 0.05, 0.05, 0.05, 0.75, 0, 0, 0]
    assert OrientationFixer(_Fixed(mirrored), mirror=True).detect(film, 239).name == "flip"
    rotations_only = OrientationFixer(_Fixed(mirrored)).detect(film, 239)  # the default: mirrors are not undone
    assert rotations_only.name == "upright" and not rotations_only.corrected
    with pytest.raises(CxrkitError, match="not an orientation model"):
        OrientationFixer(create("resnet18"))


def test_predict_fix_orientation_scores_the_upright_film(always_rot90, tiny_model_file, example_images, tmp_path):
    film = read_image(example_images[1]).pixels
    turned = tmp_path / "turned.png"
    Image.fromarray(apply_orientation(film, 1)).save(turned)
    out = tmp_path / "fixed.csv"
    result = runner.invoke(app, ["predict", str(turned), "--model", str(tiny_model_file), "-o", str(out),
                                 "--fix-orientation", "--orientation-model", str(always_rot90)])
    assert result.exit_code == 0, result.output
    upright = tmp_path / "upright.csv"
    assert runner.invoke(app, ["predict", str(example_images[1]), "--model", str(tiny_model_file),
                               "-o", str(upright)]).exit_code == 0
    with open(out, newline="") as a, open(upright, newline="") as b:
        fixed, plain = next(csv.DictReader(a)), next(csv.DictReader(b))
    assert (fixed["orientation"], fixed["orientation_fixed"]) == ("rot90", "yes")
    scores = [k for k in plain if k not in ("file", "status", "error")]
    assert [fixed[k] for k in scores] == [plain[k] for k in scores]  # the same pixels, the same scores


@pytest.mark.slow
def test_bundled_orientation_model_on_held_out_films(example_images):
    """The bundled model on the 6 example films (their patients were held out of its training),
    each shown in all 8 orientations."""
    bundled = load_model(None, default=DEFAULT_ORIENTATION_MODEL)
    rotations, everything = OrientationFixer(bundled), OrientationFixer(bundled, mirror=True)
    rotation_right = all_right = 0
    for path in example_images:
        image = read_image(path)
        for index in range(8):
            shown = apply_orientation(image.pixels, index)
            rotation_right += rotations.detect(shown, image.maxval).index == index % 4
            all_right += everything.detect(shown, image.maxval).index == index
    total = 8 * len(example_images)
    assert rotation_right / total >= 0.95, (rotation_right, all_right, total)
    assert all_right / total >= 0.85, (rotation_right, all_right, total)
