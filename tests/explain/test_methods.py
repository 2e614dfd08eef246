"""Every method behind one call: the bright-square test in original geometry, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrkit.explain import METHODS, ExplainError, UnknownLabel, UnknownMethod, explain, to_original_geometry
from cxrkit.explain._model import Staged, frozen
from cxrkit.models import create

from .conftest import HEIGHT, SQUARE, WIDTH, square_image

#: Small options so the whole file runs in seconds on one busy core (defaults are covid-cxr's).
FAST = {"lime": {"samples": 200, "kernel_size": 2}, "ig": {"steps": 16}}


@pytest.mark.parametrize("method", METHODS)
def test_peak_falls_inside_the_square_in_original_geometry(square_model, image, method):
    heat = explain(square_model, image, "Mass", method, **FAST.get(method, {}))
    assert heat.array.shape == (HEIGHT, WIDTH) and heat.array.dtype == np.float32
    assert np.isfinite(heat.array).all()
    row, col = heat.peak()
    r0, r1, c0, c1 = SQUARE
    assert r0 <= row < r1 and c0 <= col < c1, f"{method} peak at {(row, col)}, square rows {r0}-{r1} cols {c0}-{c1}"
    # the 20 px margins on each side were cropped away before the model: no evidence there
    assert not heat.array[:, :20].any() and not heat.array[:, -20:].any()
    low = -1.0 if method == "lime" else 0.0
    assert heat.array.min() >= low and heat.array.max() <= 1.0 + 1e-6
    assert heat.label == "Mass" and heat.method == method and heat.meta["crop"] == (0, 20, 80)
    assert heat.score == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-4)


def test_the_square_model_really_depends_on_the_square(square_model):
    with torch.no_grad():
        from cxrkit.preprocess import model_input

        with_sq, without = (torch.from_numpy(model_input(square_image(s), 255.0, 64))[None] for s in (True, False))
        assert square_model(with_sq)[0, 0] - square_model(without)[0, 0] > 1.0


def test_lime_is_signed_top10_and_seeded(square_model, image):
    a = explain(square_model, image, "Mass", "lime", samples=200, kernel_size=2, seed=3)
    b = explain(square_model, image, "Mass", "lime", samples=200, kernel_size=2, seed=3)
    assert np.array_equal(a.array, b.array)
    assert a.signed and len(a.meta["features"]) <= 10
    shown = {float(v) for v in np.unique(a.array[:, 20:100]) if v != 0}
    assert 0 < len(shown) <= 10
    c = explain(square_model, image, "Mass", "lime", samples=200, kernel_size=2, seed=4)
    assert c.meta["weights"] != a.meta["weights"]  # the seed is really used


@pytest.mark.parametrize("method", ["gradcam", "saliency", "occlusion"])
def test_same_input_same_map(square_model, image, method):
    assert np.array_equal(explain(square_model, image, 0, method).array, explain(square_model, image, 0, method).array)


def test_geometry_undoes_crop_and_resize():
    # portrait film: the crop removes rows; a hot block in the input's top-left lands at the crop's top-left
    small = np.zeros((16, 16), np.float32)
    small[:4, :4] = 1.0
    out = to_original_geometry(small, (200, 100))
    assert out.shape == (200, 100)
    top, side = 50, 100
    assert not out[:top].any() and not out[top + side :].any()
    assert out[top + 5, 5] == pytest.approx(1.0) and out[top + 80, 80] == 0.0


def test_label_choice_and_errors(square_model, image):
    top = explain(square_model, image, "top", "cam")
    assert top.label == "Mass"  # the square makes Mass the highest score
    assert explain(square_model, image, "nodule", "cam").label == "Nodule"  # case-insensitive name
    with pytest.raises(UnknownLabel, match="predicts: Mass, Nodule"):
        explain(square_model, image, "Hernia", "cam")
    with pytest.raises(UnknownMethod):
        explain(square_model, image, "Mass", "guided-backprop")
    with pytest.raises(ExplainError, match="does not take"):
        explain(square_model, image, "Mass", "cam", samples=3)
    with pytest.raises(ExplainError, match="maxval"):
        explain(square_model, image.astype(np.float32), "Mass", "cam")


def test_staged_view_equals_the_registry_models_and_weights_stay_clean():
    torch.manual_seed(0)
    for name in ("densenet121", "resnet50"):
        model = create(name).eval()
        x = torch.randn(1, 1, 64, 64) * 500
        with torch.no_grad():
            assert torch.allclose(Staged(model)(x), model(x), atol=1e-4)
    model = create("densenet121")
    model.train()
    with frozen(model):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_real_radiograph_with_a_registry_model(example_images):
    model = create("densenet121")
    model.card.input_size = 64  # small input: fast, and the mapping back to 1024 px is the same code
    heat = explain(model, example_images[0], "Effusion", "gradcam++")
    assert heat.array.shape == heat.meta["original_shape"] and heat.meta["source"] == str(example_images[0])
    assert all(p.grad is None for p in model.parameters())  # Grad-CAM left no weight gradients behind
