import json

import pytest
import torch

from cxrkit.errors import ChecksumMismatch, CxrkitError, ModelNotFound, WeightsError
from cxrkit.labels import PATHOLOGIES
from cxrkit.models import CxrModel, ModelCard, create, list_architectures, list_models, register_model, save_weights
from cxrkit.models.store import find_card


def test_architectures_registered_and_duplicates_refused():
    assert {"densenet121", "resnet50"} <= set(list_architectures())
    assert list_architectures("res*") == ["resnet101_ae", "resnet18", "resnet34", "resnet50"]
    with pytest.raises(ValueError, match="already registered"):
        register_model("densenet121", input_size=224, family="x", filter_fn=lambda s, m: s)(lambda **k: None)


@pytest.mark.parametrize("arch, size, width", [("densenet121", 64, 1024), ("resnet50", 64, 2048),
                                               ("resnet18", 64, 512)])
def test_feature_head_split(arch, size, width):
    """timm's meanings: forward_features is the last map, forward_head pools it and classifies."""
    model = create(arch)
    assert isinstance(model, CxrModel) and isinstance(model.card, ModelCard) and model.num_features == width
    assert model.card.labels == list(PATHOLOGIES) and model.card.input_size in (224, 512)
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        fmap = model.forward_features(x)
        assert fmap.ndim == 4 and fmap.shape[:2] == (2, width)
        logits = model.forward_head(fmap)
        assert torch.allclose(logits, model(x), atol=1e-5)
        pooled = model.forward_head(fmap, pre_logits=True)
        assert pooled.shape == (2, width) and torch.allclose(pooled, fmap.mean((2, 3)), atol=1e-6)
        assert torch.allclose(model.get_classifier()(pooled), logits, atol=1e-6)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.get_classifier().out_features == 3


def test_an_autoencoder_has_features_but_no_head():
    model = create("small_resnet_ae")
    x = torch.zeros(1, 1, 224, 224)
    with torch.no_grad():
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (1, model.num_features)
    with pytest.raises(CxrkitError, match="no classification head"):
        model.get_classifier()


def test_create_with_custom_head():
    model = create("densenet121", labels=["COVID-19", "Normal"])
    assert model.card.labels == ["COVID-19", "Normal"]
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2)


def test_unknown_model_error_lists_choices(cxrkit_home):
    with pytest.raises(ModelNotFound, match="densenet121"):
        create("no-such-model")
    with pytest.raises(ModelNotFound, match="cxr models fetch"):
        create("densenet121-res224-all")


def _card(**kw):
    base = dict(name="t.demo", architecture="densenet121", labels=["Effusion", None, "Mass"], input_size=224)
    base.update(kw)
    return ModelCard(**base)


def test_card_validation_names_the_problem():
    with pytest.raises(WeightsError, match="threshold for 'Edema'"):
        _card(thresholds={"Edema": 0.2}).validate()
    with pytest.raises(WeightsError, match=r"must lie in \(0, 1\)"):
        _card(thresholds={"Mass": 1.5}).validate()
    with pytest.raises(WeightsError, match="duplicate"):
        _card(labels=["Mass", "Mass"]).validate()
    with pytest.raises(WeightsError, match="task"):
        _card(task="segmentation").validate()


def test_save_load_roundtrip_and_checksum(tmp_path):
    model = create("densenet121", labels=["Effusion", "Mass"])
    card = _card(labels=["Effusion", "Mass"], thresholds={"Mass": 0.3})
    card_path = save_weights(model, card, tmp_path / "t.safetensors")
    data = json.loads(card_path.read_text())
    assert data["weights_file"] == "t.safetensors" and len(data["sha256"]) == 64
    loaded = create(tmp_path / "t.safetensors")
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert loaded.card.thresholds == {"Mass": 0.3}
    # one flipped byte in the tensor file is caught before loading
    blob = bytearray((tmp_path / "t.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "t.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ChecksumMismatch, match="does not match"):
        create(tmp_path / "t.safetensors")


def test_card_without_checksum_is_refused(tmp_path):
    model = create("densenet121", labels=["Effusion", "Mass"])
    card_path = save_weights(model, _card(labels=["Effusion", "Mass"]), tmp_path / "t.safetensors")
    data = json.loads(card_path.read_text())
    data["sha256"] = None
    card_path.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="no sha256"):
        create(card_path)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    model = create("resnet50", labels=["Effusion", "Mass"])
    card = _card(labels=["Effusion", "Mass"], architecture="resnet50")
    card_path = save_weights(model, card, tmp_path / "r.safetensors")
    data = json.loads(card_path.read_text())
    data["architecture"] = "densenet121"
    card_path.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="do not fit densenet121"):
        create(card_path)


def test_registered_in_cache_is_found(cxrkit_home):
    model = create("densenet121", labels=["Effusion", "Mass"])
    save_weights(model, _card(name="densenet121.unit", labels=["Effusion", "Mass"]), cxrkit_home / "models" / "u.safetensors")
    assert "densenet121.unit" in [c.name for c in list_models()]
    assert create("densenet121", weights="unit").card.name == "densenet121.unit"
    assert find_card("densenet121.unit")[0].labels == ["Effusion", "Mass"]


@pytest.mark.parametrize("card", list_models(), ids=lambda c: c.name)
def test_every_registered_weight_has_a_complete_card(card):
    """Schema check of every weight shipped or cached (torchvision's test_schema_meta_validation idea)."""
    card.validate()
    assert card.sha256 and card.weights_file and card.description and card.provenance
    assert card.normalization["range"] == [-1024.0, 1024.0]
    if card.task == "multilabel":
        assert set(card.thresholds) <= set(card.trained_labels)


def test_half_precision_weight_files_load_as_float32_and_float16_overflow_is_refused(tmp_path):
    import torch

    from cxrkit.errors import WeightsError

    model = create("resnet18", num_classes=2)
    card = ModelCard(name="t.half", architecture="resnet18", labels=["a", "b"], input_size=32, task="multiclass")
    save_weights(model, card, tmp_path / "half.safetensors", dtype=torch.bfloat16)
    assert (tmp_path / "half.safetensors").stat().st_size < 0.55 * 4 * sum(p.numel() for p in model.parameters())
    loaded = create(str(tmp_path / "half.safetensors"))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    original = model.model.conv1.weight
    assert torch.allclose(loaded.model.conv1.weight, original, rtol=1e-2, atol=1e-6)
    with torch.no_grad():
        model.model.bn1.running_var.fill_(1e6)  # what [-1024, 1024] inputs give the first BatchNorm
    with pytest.raises(WeightsError, match="bn1.running_var"):
        save_weights(model, card, tmp_path / "overflow.safetensors", dtype=torch.float16)


@pytest.mark.parametrize("arch", ["densenet121", "resnet18"])
def test_drop_rate_is_training_dropout_only(arch):
    """``create(..., drop_rate=)`` is timm's option: dropout while training, nothing in eval mode,
    no weights of its own (a file saved without it loads with it)."""
    torch.manual_seed(0)
    plain = create(arch, labels=["a", "b"])
    dropped = create(arch, labels=["a", "b"], drop_rate=0.5)
    dropped.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), dropped.eval()(x))
        dropped.train()
        torch.manual_seed(1)
        first = dropped(x)
        torch.manual_seed(2)
        assert not torch.allclose(first, dropped(x)), "dropout in training mode changes the output"


def test_drop_rate_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match=r"drop_rate must be in \[0, 1\)"):
        create("resnet18", drop_rate=1.0)
    with pytest.raises(ValueError, match="no dropout"):
        create("small_resnet_ae", drop_rate=0.2)
