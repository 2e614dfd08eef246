"""The reconstruction task: an autoencoder trained by `cxr train` on real NIH films, its card measured
against the mean-image and blurred-input baselines, and its latent code usable by `cxr embed`."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cxrkit import models
from cxrkit.cli.main import app
from cxrkit.train import config_from_dict, fit, load_config, prepare_data
from cxrkit.train.config import ConfigError
from cxrkit.train.fit import build_model
from cxrkit.train.reconstruction import (
    blurred,
    image_errors,
    mean_image,
    reconstruct,
    reconstruction_validation,
    set_output_scale,
)

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "autoencoder-nih.yaml"


def _recipe() -> dict:
    import yaml

    return yaml.safe_load(RECIPE.read_text())


@pytest.mark.parametrize("changes, key", [
    ({"model.architecture": "densenet121", "model.input_size": None}, "model.architecture"),
    ({"task": "multilabel"}, "task"),
    ({"model.input_size": 128}, "model.input_size"),
    ({"data.target": "age"}, "data.target"),
    ({"select.metric": "val_auc"}, "select.metric"),
    ({"model.freeze_backbone": True, "model.weights": "x.safetensors"}, "model.freeze_backbone"),
    ({"model.drop_rate": 0.2}, "model.drop_rate"),
])
def test_config_rules_of_the_reconstruction_task(changes, key, tmp_path):
    base = _recipe()
    base["data"].update(root=str(tmp_path), label_file=str(tmp_path / "labels.csv"))
    for dotted, value in changes.items():
        section, name = dotted.split(".") if "." in dotted else (None, dotted)
        (base[section] if section else base)[name] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(base)
    assert info.value.key == key


def test_tuning_a_reconstruction_run_uses_its_own_metrics(tmp_path):
    """Tuning selects on what a reconstruction run logs (val_mse, val_ssim), never on val_auc."""
    from cxrkit.train.tune import parse_tune

    base = _recipe()
    base["data"].update(root=str(tmp_path), label_file=str(tmp_path / "labels.csv"))
    space = {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    base["tune"] = {"trials": 2, "metric": "val_ssim", "space": space}
    assert parse_tune(config_from_dict(base)).direction == "maximize"
    base["tune"]["metric"] = "val_auc"
    with pytest.raises(ConfigError) as info:
        parse_tune(config_from_dict(base))
    assert info.value.key == "tune.metric"


def test_the_recipe_loads_with_its_held_out_example_patients():
    cfg = load_config(RECIPE)
    assert cfg.task == "reconstruction" and cfg.model.architecture == "small_resnet_ae"
    assert cfg.loss.reconstruction == "mse" and cfg.select.blur_sigma == 4.0
    examples = {p.name.split("_")[0].lstrip("0") for p in (REPO / "examples").glob("*.png")}
    assert examples and examples <= set(cfg.data.exclude_patients)


def test_error_measures_and_baselines_on_known_images():
    rng = torch.Generator().manual_seed(0)
    images = torch.rand((3, 1, 64, 64), generator=rng) * 2048 - 1024
    mse, ssim = image_errors(images, images)
    assert torch.all(mse == 0) and torch.allclose(ssim, torch.ones(3), atol=1e-5)
    worse = image_errors(images + 100.0, images)[0]
    assert torch.allclose(worse, torch.full((3,), 10_000.0), rtol=1e-4)
    flat = torch.full((1, 1, 32, 32), 300.0)
    assert torch.allclose(blurred(flat, 4.0), flat)  # a blur keeps a constant film
    smooth = blurred(images, 4.0)
    assert smooth.std() < images.std() / 5 and torch.allclose(smooth.mean(), images.mean(), atol=5)

    class Split:
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def image(self, i):
            return self.x[i]

    assert torch.allclose(mean_image(Split(images), batch=2), images.mean(0), atol=1e-3)


def test_small_autoencoder_is_registered_with_the_model_surface():
    ae = models.create("small_resnet_ae")
    assert ae.card.task == "reconstruction" and ae.card.labels == []
    x = torch.randn(2, 1, 224, 224) * 400
    with torch.no_grad():
        z = ae.eval().encode(x)
        assert z.shape == (2, *ae.latent_shape) == (2, 128, 3, 3)
        assert ae.decode(z).shape == x.shape and ae.forward_head(ae.forward_features(x), pre_logits=True).shape == (2, ae.num_features)
    assert sum(p.numel() for p in ae.parameters()) < 1_000_000


@pytest.mark.slow  # trains on the NIH films: over a minute
def test_trained_on_nih_films_card_has_errors_and_both_baselines(shared_data, tmp_path):
    nih = shared_data / "nih"
    cfg = load_config(RECIPE, [f"data.root={nih / 'images'}", f"data.label_file={nih / 'Data_Entry_2017_v2020.csv'}",
                               "data.max_images=32", "data.batch_size=4", "trainer.max_epochs=3",
                               "trainer.max_time_minutes=null", "trainer.checkpoint_every_n_steps=null",
                               "optim.lr=0.003", "select.bootstrap=50", f"output_dir={tmp_path / 'run'}"])
    data = prepare_data(cfg)
    pl.seed_everything(cfg.seed, verbose=False)
    start = build_model(cfg, [])  # the run's starting point (same seed, same output scaling)
    set_output_scale(start, data.train_set)
    valid = torch.stack([data.valid_set.image(i) for i in range(len(data.valid_set))])
    before = float(image_errors(reconstruct(start, data.valid_set), valid)[0].mean())

    weights = fit(cfg, data=data)
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["task"] == "reconstruction" and card["labels"] == [] and card["thresholds"] == {}
    history = card["training"]["history"]
    assert len(history) == 3 and history[-1]["val_loss"] < history[0]["val_loss"]
    validation = card["metrics"]["validation"]
    assert validation["mse"] < before  # training reduced the reconstruction error on held-out films
    assert validation["mse_ci"][0] <= validation["mse"] <= validation["mse_ci"][1]
    assert validation["ssim_ci"][0] <= validation["ssim"] <= validation["ssim_ci"][1]
    baselines = validation["baselines"]
    assert set(baselines) == {"training_mean_image", "blurred_input"}
    assert baselines["blurred_input"]["sigma_px"] == 4.0
    assert baselines["training_mean_image"]["images"] == card["training"]["split"]["train"]["images"]

    # The numbers are the stored file's, on the held-out patients, recomputed independently here.
    model = models.create(str(weights))
    again = reconstruction_validation(model, data, cfg)
    assert again["mse"] == pytest.approx(validation["mse"], rel=1e-4)
    assert again["ssim"] == pytest.approx(validation["ssim"], rel=1e-4)
    assert set(data.valid_set.patients).isdisjoint(data.train_set.patients)
    mean = np.mean([data.train_set.image(i).numpy() for i in range(len(data.train_set))], axis=0)
    mean_mse = float(((valid.numpy() - mean) ** 2).mean())
    assert baselines["training_mean_image"]["mse"] == pytest.approx(mean_mse, rel=1e-4)
    expected = validation["mse"] < min(b["mse"] for b in baselines.values()) and \
        validation["ssim"] > max(b["ssim"] for b in baselines.values())
    assert validation["beats_baselines"] is expected

    # `cxr embed --layer latent` with the trained weights: the flattened 128 x 3 x 3 code of each film.
    films = sorted((nih / "images").glob("*.png"))[:2]
    out = tmp_path / "latent.csv"
    result = CliRunner().invoke(app, ["embed", *map(str, films), "--model", str(weights), "--layer", "latent",
                                      "--precision", "fp32", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()
    assert len(rows) == 3 and rows[0].split(",")[-1] == "v1151"
    vector = np.array([float(v) for v in rows[1].split(",")[3:]])
    assert np.isfinite(vector).all() and vector.std() > 0
