"""Converting TorchXRayVision weight files: parity with its own outputs, and no code execution."""

import json
import os

import numpy as np
import pytest
import torch
import torchvision

from cxrkit.errors import WeightsError
from cxrkit.io import read_image
from cxrkit.labels import PATHOLOGIES
from cxrkit.models import create
from cxrkit.models.import_xrv import import_torchxrayvision, read_checkpoint
from cxrkit.predict import Predictor

xrv = pytest.importorskip("torchxrayvision")


def _randomise_batchnorm(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def xrv_densenet(tmp_path_factory):
    """A TorchXRayVision DenseNet with random weights and the 'nih' head layout, saved as its releases are."""
    torch.manual_seed(1)
    model = xrv.models.DenseNet(num_classes=18)
    _randomise_batchnorm(model)
    labels = [p if i < 14 else "" for i, p in enumerate(PATHOLOGIES)]
    model.pathologies = model.targets = labels
    thresholds = torch.rand(18) * 0.3 + 0.02
    thresholds[14:] = float("nan")
    model.op_threshs = thresholds
    model.eval()
    path = tmp_path_factory.mktemp("xrv") / "nih-densenet121-random.pt"
    torch.save(model, path)  # whole pickled module, like the published DenseNet files
    return model, path


def _xrv_inputs(files):
    """TorchXRayVision's documented path (skimage read, normalize, crop, resize) with its cv2 engine."""
    import skimage.io

    transform = torchvision.transforms.Compose([xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(224, engine="cv2")])
    out = []
    for f in files:
        img = xrv.datasets.normalize(skimage.io.imread(f), 255)
        out.append(transform(img[None] if img.ndim == 2 else img[None, :, :, 0]))
    return torch.from_numpy(np.stack(out))


@pytest.mark.slow
def test_import_whole_pickled_module_matches_xrv_on_real_images(xrv_densenet, tmp_path, example_images):
    model, path = xrv_densenet
    card_path = import_torchxrayvision(path, tmp_path / "nih-random.safetensors")
    card = json.loads(card_path.read_text())
    assert card["labels"][:14] == list(PATHOLOGIES[:14]) and card["labels"][14:] == [None] * 4
    assert set(card["thresholds"]) == set(PATHOLOGIES[:14])

    ours = create(tmp_path / "nih-random.safetensors")
    x = _xrv_inputs(example_images)
    with torch.no_grad():
        theirs = model(x).numpy()  # sigmoid + op_norm inside
    predictor = Predictor(ours, precision="fp32")
    same_input = predictor.predict_batch(x)
    assert np.abs(same_input[:, :14] - theirs[:, :14]).max() < 1e-4
    # untrained labels: xrv says 0.5, cxrkit leaves them empty
    assert np.isnan(same_input[:, 14:]).all()

    # end to end through cxrkit's own reader and preprocessing
    ours_e2e = predictor.predict_batch([predictor.preprocess(i.pixels, i.maxval) for i in map(read_image, example_images)])
    assert np.abs(ours_e2e[:, :14] - theirs[:, :14]).max() < 1e-4


@pytest.mark.slow
def test_import_state_dict_resnet_matches_torchvision_layout(tmp_path, example_images):
    torch.manual_seed(2)
    base = torchvision.models.resnet50(num_classes=18)
    base.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    _randomise_batchnorm(base, seed=3)
    base.eval()
    path = tmp_path / "resnet50-state.pt"
    torch.save(base.state_dict(), path)  # the published ResNet is a plain state dict
    card_path = import_torchxrayvision(path, tmp_path / "r.safetensors", published_name="resnet50-res512-all")
    ours = create(card_path)
    assert ours.card.input_size == 512 and ours.card.name == "resnet50.res512-all"
    x = torch.randn(2, 1, 96, 96) * 400
    thresholds = torch.tensor(
        [ours.card.thresholds.get(label, float("nan")) for label in PATHOLOGIES], dtype=torch.float32
    )
    with torch.no_grad():
        expected = xrv.models.op_norm(torch.sigmoid(base(x)), thresholds).numpy()
        got = Predictor(ours, precision="fp32").predict_batch(x)
    has = ~np.isnan(thresholds.numpy())
    assert np.abs(got[:, has] - expected[:, has]).max() < 1e-5
    # e.g. 'Lung Lesion' has no published threshold: its raw probability, listed as uncalibrated
    raw = Predictor(ours, precision="fp32", calibrate=False).predict_batch(x)
    trained = np.array([label in ours.card.trained_labels for label in PATHOLOGIES])
    assert np.allclose(got[:, ~has & trained], raw[:, ~has & trained], atol=1e-6)
    assert np.isnan(got[:, ~trained]).all()
    assert set(ours.card.uncalibrated_labels) == {label for label, h in zip(PATHOLOGIES, has, strict=True) if not h and label in ours.card.trained_labels}


def test_malicious_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": Evil()}, path)
    state, _ = read_checkpoint(path)
    assert not marker.exists()
    assert list(state) == ["weight"]
    torch.save(Evil(), path)
    with pytest.raises(WeightsError):
        read_checkpoint(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "x.pt"
    bogus.write_text("hello")
    with pytest.raises(WeightsError, match="not a PyTorch"):
        read_checkpoint(bogus)
