"""A small random age model (ResNet-18, 64 px) saved as a weight file, for fast CLI and API tests."""

from __future__ import annotations

import pytest
import torch

from cxrkit.models import ModelCard, create, save_weights


@pytest.fixture(scope="session")
def age_model_file(tmp_path_factory, example_images, fit_batchnorm):
    torch.manual_seed(0)
    model = create("resnet18", num_classes=1)
    fit_batchnorm(model, example_images, size=64)
    with torch.no_grad():
        model.model.fc.bias.fill_(50.0)  # ages around 50, spread by the random features
    card = ModelCard(name="resnet18.test-age", architecture="resnet18", labels=["age"], input_size=64,
                     task="regression", description="random weights for tests",
                     provenance={"source": "random initialisation (test fixture)"})
    folder = tmp_path_factory.mktemp("age_model")
    save_weights(model, card, folder / "age.safetensors")
    return folder / "age.safetensors"
