"""Losses, augmentation and sampling: the small pieces exact training depends on."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cxrkit.train import Augment, EpochSampler, TaskLoss, masked_bce
from cxrkit.train.config import AugmentConfig, LossConfig


def test_masked_bce_ignores_nan_targets():
    logits = torch.randn(4, 3, requires_grad=True)
    targets = torch.tensor([[1.0, math.nan, 0.0], [math.nan, math.nan, 1.0], [0.0, 1.0, math.nan], [1.0, 0.0, 0.0]])
    loss = masked_bce(logits, targets)
    loss.backward()
    nan = torch.isnan(targets)
    assert torch.all(logits.grad[nan] == 0)
    assert torch.all(logits.grad[~nan] != 0)
    known = ~nan
    expected = F.binary_cross_entropy_with_logits(logits[known], targets[known])
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_masked_bce_equals_bce_without_nan_and_uses_pos_weight():
    logits, targets = torch.randn(5, 2), torch.randint(0, 2, (5, 2)).float()
    assert masked_bce(logits, targets).item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-6)
    w = torch.tensor([3.0, 1.0])
    assert masked_bce(logits, targets, w).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, targets, pos_weight=w).item(), rel=1e-6)


def test_task_losses():
    ce = TaskLoss("multiclass", LossConfig(), class_weights=torch.tensor([1.0, 2.0, 3.0]))
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    assert ce(logits, y).item() == pytest.approx(F.cross_entropy(logits, y, weight=torch.tensor([1.0, 2.0, 3.0])).item())
    l1 = TaskLoss("regression", LossConfig(regression="l1"))
    assert l1(torch.tensor([[50.0], [60.0]]), torch.tensor([52.0, 57.0])).item() == pytest.approx(2.5)
    mse = TaskLoss("regression", LossConfig(regression="mse"))
    assert mse(torch.tensor([[50.0], [60.0]]), torch.tensor([52.0, 57.0])).item() == pytest.approx(6.5)


def test_augment_is_reproducible_per_seed_and_leaves_global_rng_alone():
    aug = Augment(AugmentConfig(preset="xrv"), 32)
    image = torch.linspace(-1024, 1024, 32 * 32).reshape(1, 32, 32)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = aug(image, 7), aug(image, 7), aug(image, 8)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == image.shape and a.min() >= -1024 and a.max() <= 1024
    assert not Augment(AugmentConfig(preset="none"), 32).active
    assert Augment(AugmentConfig(preset="xrv"), 32).values["rotate"] == 45.0
    assert Augment(AugmentConfig(preset="xrv", rotate=10.0), 32).values["rotate"] == 10.0
    full = Augment(AugmentConfig(preset="augmented"), 32)(image, 3)
    assert full.shape == image.shape


def test_sampler_order_depends_on_seed_and_epoch_only_and_resumes():
    s = EpochSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    again = EpochSampler(10, seed=3)
    again.set_epoch(2)
    assert list(again) == full
    again.set_epoch(1)
    assert list(again) != full
    resumed = EpochSampler(10, seed=3)
    resumed.set_epoch(2)
    resumed.skip(2, 4)
    assert list(resumed) == full[4:]
    assert list(resumed) == full  # the skip applies once


def test_sampler_shards_for_ddp_and_oversamples():
    shards = [list(EpochSampler(9, seed=0, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert {i for i, _ in shards[0] + shards[1]} == set(range(9))
    weights = torch.tensor([1.0] * 9 + [0.0])
    drawn = [i for i, _ in EpochSampler(10, seed=0, weights=weights)]
    assert len(drawn) == 10 and 9 not in drawn
