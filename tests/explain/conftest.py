"""A tiny model whose logit depends on a bright square, and a non-square test image that contains one.

The network is a real 3-layer CNN with the registry model surface (a CxrModel:
forward_features, forward_head, card), small enough that every method runs in well under a second. Its
channel 0 is a brightness detector feeding the "Mass" logit with a large weight; the
other channels are seeded random filters with small head weights, so maps are not
trivially clean. The image is 80 x 120 (landscape), so the centre crop cuts 20 px off
each side and the map has to be shifted back to line up.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cxrkit.models import CxrModel, ModelCard
from cxrkit.preprocess import model_input

HEIGHT, WIDTH = 80, 120
SQUARE = (12, 32, 66, 86)  # rows 12..31, cols 66..85: off-centre, inside the centre crop (cols 20..99)


class SquareNet(CxrModel):
    """64 px input -> 8 x 8 x 8 feature map -> pooled -> linear head over 2 labels."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.classifier = nn.Linear(8, 2)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2, self.conv3):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.05)
                conv.bias.zero_()
                conv.weight[0] = 0.0
                conv.weight[0, 0] = 1.0 / 9.0  # channel 0 averages channel 0: a brightness detector
            self.conv1.bias[0] = -0.5  # fires only where the input is above 75 % of white
            self.classifier.weight.copy_(torch.randn(self.classifier.weight.shape, generator=g) * 0.1)
            self.classifier.weight[0, 0] = 60.0
            self.classifier.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x / 1024.0))
        h = F.relu(self.conv2(h))
        return F.relu(self.conv3(h))

    def get_classifier(self) -> nn.Module:
        return self.classifier


def square_image(with_square: bool = True, seed: int = 1) -> np.ndarray:
    """uint8 80 x 120: textured background below the detector's threshold, a white square on it."""
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 150, size=(HEIGHT, WIDTH)).astype(np.uint8)
    if with_square:
        r0, r1, c0, c1 = SQUARE
        image[r0:r1, c0:c1] = 255
    return image


@pytest.fixture(scope="session")
def square_model() -> SquareNet:
    model = SquareNet().eval()
    with torch.no_grad():  # centre the "Mass" logit: about +2 with the square, far below without
        x = torch.from_numpy(model_input(square_image(), 255.0, 64))[None]
        model.classifier.bias[0] = 2.0 - model(x)[0, 0]
    model.card = ModelCard(
        name="test.square", architecture="squarenet", labels=["Mass", "Nodule"], input_size=64,
        description="hand-set weights: the Mass logit measures a bright square",
    )
    return model


@pytest.fixture(scope="session")
def image() -> np.ndarray:
    return square_image()


@pytest.fixture(scope="session")
def tiny_densenet_file(tmp_path_factory):
    """A random DenseNet-121 weight file with a 64 px input (fast on CPU) and the NIH labels."""
    from cxrkit.labels import PATHOLOGIES
    from cxrkit.models import create, save_weights

    torch.manual_seed(0)
    model = create("densenet121")
    card = ModelCard(
        name="densenet121.explain-test", architecture="densenet121", labels=list(PATHOLOGIES[:14]) + [None] * 4,
        input_size=64, description="random weights for explain tests",
    )
    path = tmp_path_factory.mktemp("explain_model") / "tiny.safetensors"
    save_weights(model, card, path)
    return path
