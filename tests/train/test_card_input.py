"""Training makes its images with the input transform of the card it will write, so the card's
validation numbers come from films prepared as the finished model's runners prepare them."""

from __future__ import annotations

import torch

from cxrkit.models import ModelCard
from cxrkit.preprocess import model_input
from cxrkit.train import config_from_dict, prepare_data

from .conftest import tiny_config


def test_validation_images_are_made_by_the_written_cards_transform(tiny_csv, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_csv, tmp_path, data={"cache": False}))
    data = prepare_data(cfg)
    card = ModelCard(name=cfg.name, architecture=cfg.model.architecture, labels=list(data.label_names),
                     input_size=data.size, task=cfg.task)  # what write_model stores
    valid = data.valid_set
    assert valid.dataset.input_transform == card.transforms()
    for i in range(3):
        film = valid.dataset.read_film(i)  # 48 x 40 px: the centre crop matters
        expected = torch.from_numpy(card.transforms()(film.pixels, film.maxval))
        assert torch.equal(valid.image(i), expected)
        assert torch.equal(expected, torch.from_numpy(model_input(film.pixels, film.maxval, 32)))
