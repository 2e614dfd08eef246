"""Boxes and masks move with the image: a bright rectangle drawn into a synthetic film must stay
under its box and its mask after every geometric transform (crop, resize, rotation, flip,
random crop, affine, perspective)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrkit.preprocess import CenterCrop, Compose, Resize
from cxrkit.preprocess.geometry import (
    boxes_to_mask,
    clip_boxes,
    flip_boxes,
    iou,
    map_peak,
    point_in_boxes,
    rotate_boxes,
    scale_boxes,
    xywh_to_xyxy,
)
from cxrkit.train.augment import Augment
from cxrkit.train.config_data import AugmentConfig

BOX = np.array([[70.0, 40.0, 130.0, 75.0]], dtype=np.float32)  # x0, y0, x1, y1 on a 160 x 240 film


def _film(height: int = 160, width: int = 240) -> dict:
    image = np.full((1, height, width), -1024.0, dtype=np.float32)
    x0, y0, x1, y1 = BOX[0].astype(int)
    image[0, y0:y1, x0:x1] = 1024.0
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return {"image": image, "mask": mask, "boxes": BOX.copy(), "box_labels": ("Mass",)}


def _bright(image) -> np.ndarray:
    return np.asarray(image)[0] > 0


def _box_of(pixels: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(pixels)
    return np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], dtype=np.float32)


def _box_iou(a: np.ndarray, b: np.ndarray, shape) -> float:
    return iou(boxes_to_mask(a, shape), boxes_to_mask(b, shape))


def _check(sample: dict) -> None:
    """The transformed box encloses the transformed bright pixels; the mask covers them."""
    bright = _bright(sample["image"])
    shape = bright.shape
    assert bright.any(), "the rectangle left the image"
    assert len(sample["boxes"]) == 1 and sample["box_labels"] == ("Mass",)
    box = np.asarray(sample["boxes"], dtype=np.float32)
    assert _box_iou(box, _box_of(bright), shape) >= 0.9
    assert iou(np.asarray(sample["mask"]), bright) >= 0.95
    assert np.asarray(sample["mask"]).dtype == np.uint8 and set(np.unique(np.asarray(sample["mask"]))) <= {0, 1}


@pytest.mark.parametrize("transform", [
    CenterCrop(),
    Resize(64),
    Resize((100, 300)),
    Compose([CenterCrop(), Resize(224)]),  # the dataset's and the model's recipe
], ids=repr)
def test_preprocess_transforms_move_boxes_and_masks(transform):
    out = transform(_film())
    _check(out)
    assert out["image"].shape[-2:] == out["mask"].shape


def test_centre_crop_drops_a_box_it_cuts_away():
    film = _film()
    film["boxes"] = np.vstack([BOX, [[0.0, 10.0, 30.0, 40.0]]])  # in the left strip a centre crop removes
    film["box_labels"] = ("Mass", "Nodule")
    out = CenterCrop()(film)
    assert out["box_labels"] == ("Mass",) and len(out["boxes"]) == 1


def test_plain_arrays_still_work():
    image = _film()["image"][0]
    assert CenterCrop()(image).shape == (160, 160) and Resize(32)(image).shape == (32, 32)


AUGMENTS = {
    "rotate": {"rotate": 30.0},
    "flip": {"flip": True},
    "crop": {"crop_scale": 0.6},
    "affine": {"rotate": 15.0, "translate": 0.1, "scale": 0.2},
    "perspective": {"perspective": 0.3},
}


@pytest.mark.parametrize("name", list(AUGMENTS))
def test_training_augmentations_move_boxes_and_masks(name):
    size = 160
    augment = Augment(AugmentConfig(**AUGMENTS[name]), size)
    film = _film(size, size)  # training images are square at this point
    flipped = 0
    for seed in range(12):
        out = augment.sample(film, seed)
        _check({k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()})
        flipped += int(out["boxes"][0, 0] < 50)  # the box starts at x = 70, its mirror image at x = 30
    if name == "flip":
        assert 0 < flipped < 12  # both outcomes of the coin were seen, and both stayed aligned


def test_augment_sample_equals_augment_image():
    augment = Augment(AugmentConfig(preset="augmented"), 160)
    film = _film(160, 160)
    image = torch.from_numpy(film["image"])
    assert torch.equal(augment(image, 5), augment.sample(film, 5)["image"])


def test_box_helpers():
    assert np.allclose(xywh_to_xyxy([[10, 20, 5, 6]]), [[10, 20, 15, 26]])
    assert np.allclose(scale_boxes([[100, 200, 300, 400]], (1024, 1024), (512, 256)), [[25, 100, 75, 200]])
    assert np.allclose(clip_boxes([[-5, 10, 50, 90]], (80, 40)), [[0, 10, 40, 80]])
    assert np.allclose(flip_boxes([[10, 0, 20, 5]], (5, 100)), [[80, 0, 90, 5]])
    turn = np.array([[0.0, -1.0, 100.0], [1.0, 0.0, 0.0]])  # 90 degrees about the origin, shifted back in
    assert np.allclose(rotate_boxes([[10, 20, 30, 60]], turn, (100, 100)), [[40, 10, 80, 30]])
    mask = boxes_to_mask([[2, 1, 4, 3]], (5, 6))
    assert mask.sum() == 4 and mask[1:3, 2:4].all()
    assert point_in_boxes((1, 2), [[2, 1, 4, 3]]) and not point_in_boxes((0, 0), [[2, 1, 4, 3]])
    assert point_in_boxes((0, 0), [[2, 1, 4, 3]], tolerance=2)
    assert np.isnan(iou(np.zeros((2, 2)), np.zeros((2, 2))))


def test_map_peak_takes_the_plateau_centre():
    a = np.zeros((9, 9))
    a[2:7, 1:4] = 1.0
    assert map_peak(a) == (4, 2)
