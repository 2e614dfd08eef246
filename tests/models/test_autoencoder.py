"""The ResNet-101 autoencoder: parity with TorchXRayVision's, import, fetch and its card."""

import hashlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.errors import CxrkitError, WeightsError
from cxrkit.io import read_image
from cxrkit.models import ModelCard, create, list_models
from cxrkit.models.autoencoder import resnet101_ae
from cxrkit.models.fetch import fetch
from cxrkit.models.import_xrv import import_torchxrayvision
from cxrkit.predict import Predictor
from cxrkit.preprocess import model_input

xrv = pytest.importorskip("torchxrayvision")
runner = CliRunner()


@pytest.fixture(scope="module")
def xrv_ae(tmp_path_factory, example_images, fit_batchnorm):
    """TorchXRayVision's ResNetAE101 with random weights (BatchNorm fitted to real films), saved both ways."""
    torch.manual_seed(5)
    model = xrv.autoencoders.ResNetAE101()
    fit_batchnorm(model, example_images, size=224)
    folder = tmp_path_factory.mktemp("xrv_ae")
    torch.save(model.state_dict(), folder / "ae-state.pt")  # what the published 101-elastic file holds
    torch.save(model, folder / "ae-module.pt")  # a whole pickled module, as xrv's DenseNet files are
    x = torch.from_numpy(np.stack([model_input(i.pixels, i.maxval, 224) for i in map(read_image, example_images)]))
    return model.eval(), folder, x


@pytest.mark.slow
@pytest.mark.parametrize("filename", ["ae-state.pt", "ae-module.pt"])
def test_import_matches_xrv_encode_and_decode(xrv_ae, tmp_path, filename):
    theirs, folder, x = xrv_ae
    card_path = import_torchxrayvision(folder / filename, tmp_path / "ae.safetensors")
    card = json.loads(card_path.read_text())
    assert card["architecture"] == "resnet101_ae" and card["task"] == "reconstruction"
    assert card["labels"] == [] and card["thresholds"] == {} and card["input_size"] == 224
    ours = create(tmp_path / "ae.safetensors")
    with torch.no_grad():
        expected = theirs(x)
        z = ours.encode(x)
        assert z.shape == (len(x), 512, 3, 3)
        assert (z - expected["z"]).abs().max() < 1e-4
        assert (ours.decode(expected["z"]) - expected["out"]).abs().max() < 1e-4
        assert (ours(x) - expected["out"]).abs().max() < 1e-4
        assert torch.allclose(ours.forward_head(ours.forward_features(x), pre_logits=True), expected["z"].mean(dim=(2, 3)),
                              atol=1e-4)
    # the weights are not trivial: different films give different codes
    assert (z[0] - z[1]).abs().max() > 1e-2


@pytest.mark.slow
def test_cli_import_infers_the_autoencoder(xrv_ae, tmp_path):
    _, folder, _ = xrv_ae
    out = tmp_path / "imported.safetensors"
    result = runner.invoke(app, ["models", "import", str(folder / "ae-state.pt"), "-o", str(out), "--format", "torchxrayvision"])
    assert result.exit_code == 0, result.output
    assert ModelCard.load(out.with_suffix(".json")).architecture == "resnet101_ae"


@pytest.mark.slow
def test_fetch_101_elastic_from_a_loopback_server(xrv_ae, srv, cxrkit_home):
    _, folder, x = xrv_ae
    payload = (folder / "ae-state.pt").read_bytes()
    srv.state.payload = payload
    card_path = fetch("101-elastic", url=srv.file_url, sha256=hashlib.sha256(payload).hexdigest())
    card = ModelCard.load(card_path)
    assert card.name == "resnet101_ae.101-elastic" and card.task == "reconstruction"
    assert card.provenance["original_sha256"] == hashlib.sha256(payload).hexdigest()
    assert "resnet101_ae.101-elastic" in [c.name for c in list_models()]
    model = create("101-elastic")  # the TorchXRayVision name resolves once fetched
    assert model.card.sha256 == card.sha256
    with torch.no_grad():
        assert model(x[:1]).shape == (1, 1, 224, 224)


def test_random_autoencoder_and_its_contract():
    model = create("resnet101_ae")
    assert model.card.task == "reconstruction" and model.card.labels == []
    with pytest.raises(CxrkitError, match="224"):
        model.encode(torch.zeros(1, 1, 64, 64))
    with pytest.raises(CxrkitError, match="no classification head"):
        resnet101_ae(num_classes=3)
    with pytest.raises(CxrkitError, match="no labels to score"):
        Predictor(model)


def test_reconstruction_cards_carry_no_labels():
    card = ModelCard(name="ae.x", architecture="resnet101_ae", labels=[], input_size=224, task="reconstruction")
    assert card.validate() is card
    with pytest.raises(WeightsError, match="no labels or thresholds"):
        ModelCard(name="ae.y", architecture="resnet101_ae", labels=["Mass"], input_size=224, task="reconstruction").validate()
    with pytest.raises(WeightsError, match="no trained labels"):
        ModelCard(name="c.z", architecture="densenet121", labels=[], input_size=224).validate()
