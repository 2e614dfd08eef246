import numpy as np
import pytest
import torch

from cxrkit.io import read_image
from cxrkit.preprocess import model_input

from cxrkit.models import ModelCard, create, save_weights
from cxrkit.labels import PATHOLOGIES


def _fit_batchnorm(model, files, size):
    """Set BatchNorm statistics from real images, so the random network's scores are not all saturated."""
    batch = []
    for f in files:
        image = read_image(f)
        batch.append(model_input(image.pixels, image.maxval, size))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.stack(batch)))
    model.eval()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, example_images):
    """A random DenseNet with a 64 px input and a 14-label (NIH-like) head, saved as a weight file.

    The small input keeps CPU tests fast; the untrained 4 labels test empty output cells.
    """
    labels = list(PATHOLOGIES[:14]) + [None] * 4
    torch.manual_seed(0)
    model = create("densenet121")
    _fit_batchnorm(model, example_images, size=64)
    card = ModelCard(
        name="densenet121.test-tiny",
        architecture="densenet121",
        labels=labels,
        input_size=64,
        thresholds={**{label: 0.3 + 0.02 * i for i, label in enumerate(PATHOLOGIES[:14])}, "Effusion": 0.4},
        description="random weights for tests",
        provenance={"source": "random initialisation (test fixture)"},
    )
    folder = tmp_path_factory.mktemp("tiny_model")
    save_weights(model, card, folder / "tiny.safetensors")
    return folder / "tiny.safetensors"
