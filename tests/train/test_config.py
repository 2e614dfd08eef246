"""Config parsing: YAML + --set overrides, typed values, errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cxrkit.train import ConfigError, apply_overrides, config_from_dict, load_config

from .conftest import tiny_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_yaml_and_overrides(tiny_csv, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tiny_csv, tmp_path)))
    cfg = load_config(path, ["optim.lr=1e-4", "data.views=[PA, AP]", "trainer.max_epochs=7",
                             "data.exclude_patients=[12, p3]", "loss.pos_weight=balanced"])
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.views == ["PA", "AP"]
    assert cfg.trainer.max_epochs == 7
    assert cfg.data.exclude_patients == ["12", "p3"]
    assert cfg.loss.pos_weight == "balanced"
    assert cfg.data.batch_size == 4  # untouched value from the file


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("optim.lr_rate=0.1", "optim.lr_rate", "unknown key"),
        ("optim.lr=fast", "optim.lr", "number"),
        ("optim.name=rmsprop", "optim.name", "sgd"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs", "integer"),
        ("data.split={train: 0.8}", "data.split", "valid"),
        ("task=segmentation", "task", "multilabel"),
        ("select.metric=val_auc", None, None),  # valid for multilabel
        ("model.architecture=vgg99", "model.architecture", "available"),
        ("model.drop_rate=1.0", "model.drop_rate", "less than 1"),
        ("trainer.channels_last=maybe", "trainer.channels_last", "true or false"),
        ("weights_out=model.pt", "weights_out", ".safetensors"),
        ("loss.class_weights=balanced", "loss.class_weights", "multiclass"),
    ],
)
def test_errors_name_the_key(tiny_csv, tmp_path, override, key, words):
    raw = apply_overrides(tiny_config(tiny_csv, tmp_path), [override])
    if key is None:
        config_from_dict(raw)
        return
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert info.value.key == key
    assert key in str(info.value) and words in str(info.value)


def test_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["optim.lr"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_config_error_is_a_cxrkit_error():
    from cxrkit.errors import CxrkitError

    assert issubclass(ConfigError, CxrkitError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    cfg = load_config(path)
    assert cfg.name and cfg.task in ("multilabel", "multiclass", "regression", "reconstruction")


def test_recipes_present():
    names = {p.stem for p in CONFIGS}
    assert {"chexnet-nih", "augmented-chest-xray", "xrv-multidataset", "covid-binary", "covid-3class",
            "nih-demo"} <= names


def test_chexnet_recipe_matches_the_paper():
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "chexnet-nih.yaml")
    assert cfg.model.architecture == "densenet121" and len(cfg.data.labels) == 14
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == ("sgd", 0.01, 0.9, 1e-4)
    assert cfg.data.batch_size == 16 and cfg.optim.scheduler == "plateau" and cfg.optim.plateau_factor == 0.1
    assert cfg.trainer.early_stop_patience == 3


def test_orientation_target_needs_multiclass_and_no_flips():
    base = {"name": "o", "task": "multiclass", "data": {"dataset": "nih", "root": "x", "target": "orientation"}}
    assert config_from_dict(base).data.target == "orientation"
    with pytest.raises(ConfigError, match="multiclass"):
        config_from_dict({**base, "task": "multilabel"})
    for augment in ({"flip": True}, {"preset": "chexnet"}, {"preset": "augmented"}):
        with pytest.raises(ConfigError, match="flip"):
            config_from_dict({**base, "data": {**base["data"], "augment": augment}})
    with pytest.raises(ConfigError, match="weights_dtype"):
        config_from_dict({**base, "weights_dtype": "int8"})


def test_age_and_orientation_recipes():
    root = Path(__file__).resolve().parents[2] / "configs"
    age = load_config(root / "age-nih.yaml")
    assert (age.task, age.data.target, age.loss.regression, age.select.metric) == ("regression", "age", "l1", "val_mae")
    orientation = load_config(root / "orientation-nih.yaml")
    assert (orientation.task, orientation.data.target) == ("multiclass", "orientation")
    # both hold out the patients of the committed example films
    assert set(age.data.exclude_patients) == set(orientation.data.exclude_patients) == {"1036", "1968", "3350", "6338", "12708", "23048"}


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("data.augment.rotaet=5", "data.augment.rotaet", "unknown key; data.augment accepts: brightness"),
        ("data.sources=[{dataset: nih, root: x, colour: red}]", "data.sources[0].colour", "unknown key"),
        ("data.sources=[{dataset: nih, views: 3}]", "data.sources[0].views", "expected a list or a string or null"),
        ("data.mask_labels=[{column: site, value: a, labels: 3}]", "data.mask_labels[0].labels",
         "expected a list or a string, got 3"),
        ("data.sampler.weights={site-a: heavy}", "data.sampler.weights.site-a", "expected a number"),
        ("data.batch_size=0", "data.batch_size", "must be positive"),
        ("trainer.max_epochs='7'", "trainer.max_epochs", "expected an integer, got '7'"),
        ("trainer.devices=1.5", "trainer.devices", "expected an integer or a string or a list"),
        ("trainer.deterministic=maybe", "trainer.deterministic", "'warn'"),
        ("trainer.precision=bf17", "trainer.precision", "auto, fp32, bf16, fp16"),
        ("data.select_on=3", "data.select_on", "expected a mapping of column, value"),
        ("data.target=height", "data.target", "must be one of labels, age, orientation"),
        ("model=resnet18", "model", "expected a mapping of architecture"),
    ],
)
def test_pydantic_errors_name_nested_keys(tiny_csv, tmp_path, override, key, words):
    with pytest.raises(ConfigError) as info:
        config_from_dict(apply_overrides(tiny_config(tiny_csv, tmp_path), [override]))
    assert info.value.key == key
    assert words in str(info.value)


@pytest.mark.parametrize(("given", "canonical", "lightning"),
                         [("bf16-mixed", "bf16", None), ("32-true", "fp32", "32-true"), ("32", "fp32", "32-true"),
                          ("16-mixed", "fp16", None), ("fp32", "fp32", "32-true"), ("auto", "auto", None)])
def test_precision_is_the_shared_vocabulary(tiny_csv, tmp_path, given, canonical, lightning):
    from cxrkit.models.precision import PRECISIONS, lightning_precision

    raw = tiny_config(tiny_csv, tmp_path)
    cfg = config_from_dict(apply_overrides(raw, [f"trainer.precision={given}", "trainer.accelerator=auto"]))
    assert cfg.trainer.precision == canonical and canonical in PRECISIONS
    if lightning is not None:
        assert lightning_precision(cfg.trainer.precision, cfg.trainer.accelerator) == lightning
    if canonical == "fp16":  # autocast fp16 is for CUDA; a CPU run is refused at load, not after data loading
        with pytest.raises(ConfigError, match="CUDA") as info:
            config_from_dict(apply_overrides(raw, [f"trainer.precision={given}", "trainer.accelerator=cpu"]))
        assert info.value.key == "trainer.precision"


def test_defaults_are_the_documented_ones():
    from cxrkit.train.config import TrainerConfig

    cfg = config_from_dict({"data": {"root": "images"}})
    assert (cfg.task, cfg.model.architecture, cfg.data.dataset, cfg.data.split) == (
        "multilabel", "densenet121", "nih", {"train": 0.8, "valid": 0.2})
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.betas, cfg.optim.scheduler) == ("adamw", 1e-3, [0.9, 0.999], "plateau")
    assert (cfg.trainer.max_epochs, cfg.trainer.early_stop_patience, cfg.trainer.deterministic) == (100, 3, "warn")
    assert TrainerConfig().precision == "bf16"  # Lightning's bf16-mixed, the default before the shared names
    assert cfg.select.groups == ["view", "sex", "age"] and cfg.data.augment.resolved()["flip"] is False


def test_dict_round_trip_and_settings(tiny_csv, tmp_path):
    import json

    from cxrkit.train.config import is_setting

    raw = apply_overrides(tiny_config(tiny_csv, tmp_path), ["data.select_on={column: view, value: PA}",
                                                             "data.sources=[{dataset: csv, label_file: x.csv}]"])
    cfg = config_from_dict(raw)
    data = json.loads(json.dumps(cfg.to_dict()))  # what fit writes as config.json
    assert config_from_dict(data) == cfg
    assert data["data"]["sources"] == [{"dataset": "csv", "label_file": "x.csv"}]  # kept as written: the rest inherits
    assert is_setting("optim.lr") and is_setting("data.select_on") and is_setting("trainer.precision")
    assert not is_setting("optim") and not is_setting("optim.lrate") and not is_setting("tune.trials")


def test_csv_sources_need_their_file(tiny_csv, tmp_path):
    raw = tiny_config(tiny_csv, tmp_path)
    with pytest.raises(ConfigError) as info:
        config_from_dict({**raw, "data": {**raw["data"], "label_file": None}})
    assert info.value.key == "data.label_file"
    with pytest.raises(ConfigError) as info:
        config_from_dict(apply_overrides({**raw, "data": {**raw["data"], "label_file": None}},
                                         ["data.sources=[{dataset: csv, root: x}]"]))
    assert info.value.key == "data.sources[0].label_file"
