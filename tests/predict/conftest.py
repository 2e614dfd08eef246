import pytest
import torch

from cxrkit.models import ModelCard, create, save_weights
from cxrkit.labels import PATHOLOGIES


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, example_images, fit_batchnorm):
    """A random DenseNet with a 64 px input and a 14-label (NIH-like) head, saved as a weight file.

    The small input keeps CPU tests fast; the untrained 4 labels test empty output cells.
    """
    labels = list(PATHOLOGIES[:14]) + [None] * 4
    torch.manual_seed(0)
    model = create("densenet121")
    fit_batchnorm(model, example_images, size=64)
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
