"""Model-randomisation sanity check (Adebayo et al. 2018) as a function and as a test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrkit.explain import explain, randomisation_test, randomise_weights, rank_correlation
from cxrkit.models import DEFAULT_MODEL, create, list_models

from .conftest import SquareNet


def test_randomise_weights_copies_and_is_seeded(square_model):
    before = {k: v.clone() for k, v in square_model.state_dict().items()}
    a, b, c = (randomise_weights(square_model, seed=s) for s in (1, 1, 2))
    for key, value in square_model.state_dict().items():
        assert torch.equal(value, before[key])  # the original is untouched
    assert torch.equal(a.conv1.weight, b.conv1.weight) and not torch.equal(a.conv1.weight, c.conv1.weight)
    assert not torch.equal(a.conv1.weight, square_model.conv1.weight)
    assert a.card is not square_model.card and a.card.labels == square_model.card.labels


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_maps_of_trained_and_randomised_model_differ(square_model, image, method):
    result = randomisation_test(square_model, image, "Mass", method, seed=0)
    assert result.passed, f"rank correlation {result.correlation:.3f} >= {result.threshold}"
    assert result.trained.meta["index"] == result.randomised.meta["index"] == 0


def test_the_check_can_fail(square_model, image):
    """Positive control: a map that does not depend on the weights (here: the same model) fails it."""
    heat = explain(square_model, image, "Mass", "gradcam")
    assert rank_correlation(heat, heat) == pytest.approx(1.0)
    # a copy whose unused weights changed (the square detector kept) gives nearly the same map
    twin = SquareNet(seed=5).eval()
    twin.load_state_dict(square_model.state_dict())
    with torch.no_grad():
        twin.classifier.weight[1] = -twin.classifier.weight[1]
    twin.card = square_model.card
    assert rank_correlation(heat, explain(twin, image, "Mass", "gradcam")) > 0.9


@pytest.mark.skipif(not any(c.name == DEFAULT_MODEL for c in list_models()), reason="default model not bundled yet")
def test_default_model_passes_on_a_real_radiograph(example_images):
    result = randomisation_test(create(DEFAULT_MODEL), example_images[0], "top", "gradcam")
    assert np.isfinite(result.correlation) and result.passed, result.correlation
