"""The torch side of the training data: image sets (cached once, optionally as float16) and the
resumable sampler.

The sampler draws its order and every sample's augmentation seed from ``(seed, epoch)``
only, so an interrupted run resumes on exactly the batches it would have seen, and
augmentation does not depend on the number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..datasets import XrayDataset
from ..models.card import InputSpec
from ..preprocess import ORIENTATIONS, ModelInput, apply_orientation
from .augment import Augment

__all__ = ["Targets", "ImageSet", "OrientationSet", "EpochSampler"]


@dataclass
class Targets:
    """Training targets of one split: ``values`` (N, K) float / (N,) long / (N,) float, and their names."""

    values: torch.Tensor
    names: list[str]
    keep: np.ndarray  # rows of the split that have a usable target


def card_input(size: int) -> ModelInput:
    """The input transform of the card training writes (``input_size=size``, the standard normalization):
    training and validation images are made as the finished model's runners will make them."""
    return InputSpec(size=size).transform()


class ImageSet(Dataset):
    """Images of one split with their targets; optionally cached in memory once, as float16."""

    def __init__(self, dataset: XrayDataset, targets: Targets, size: int, augment: Augment | None = None,
                 cache: bool = True):
        self.dataset = dataset.subset(np.flatnonzero(targets.keep))
        if isinstance(self.dataset, XrayDataset):
            self.dataset.size = size
            self.dataset.input_transform = card_input(size)
        self.targets = targets.values
        self.size = size
        self.augment = augment
        self.cache: torch.Tensor | None = None
        if cache:
            self.cache = torch.empty((len(self.dataset), 1, size, size), dtype=torch.float16)
            for i in range(len(self.dataset)):
                self.cache[i] = self._load(i)

    @property
    def patients(self) -> np.ndarray:
        return self.dataset.patients

    def __len__(self) -> int:
        return len(self.dataset)

    def image(self, index: int) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[index].float()
        return self._load(index)

    def _load(self, index: int) -> torch.Tensor:
        if isinstance(self.dataset, XrayDataset):
            return torch.from_numpy(self.dataset.load_image(index))
        return torch.as_tensor(self.dataset[index]["image"])  # merged sources, each resized at load

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        image = self.image(index)
        if self.augment is not None and seed is not None:
            image = self.augment(image, seed)
        return image, self.targets[index]


class OrientationSet(Dataset):
    """Synthetic orientation task over upright films: each sample is a film shown in one of
    :data:`~cxrkit.preprocess.ORIENTATIONS`, labelled with that orientation.

    Training (``every_orientation=False``): one sample per film, its orientation drawn from
    the sample's augmentation seed, so every epoch shows each film differently and a resumed
    run shows the same. Validation (``every_orientation=True``): every film in all eight
    orientations, in a fixed order, so accuracy is measured on each orientation equally.
    """

    def __init__(self, upright: ImageSet, every_orientation: bool):
        self.upright, self.every = upright, every_orientation
        self.k = len(ORIENTATIONS)
        n = len(upright)
        rows = np.repeat(np.arange(n), self.k) if every_orientation else np.arange(n)
        self.dataset = upright.dataset.subset(rows)
        self.targets = torch.as_tensor(np.arange(len(rows)) % self.k, dtype=torch.long)
        self.augment = upright.augment

    @property
    def patients(self) -> np.ndarray:
        return self.dataset.patients

    def __len__(self) -> int:
        return len(self.dataset)

    def _oriented(self, index: int, orientation: int) -> torch.Tensor:
        film = index // self.k if self.every else index
        oriented = apply_orientation(self.upright.image(film), orientation)
        assert isinstance(oriented, torch.Tensor)  # a tensor in, a tensor out
        return oriented.contiguous()

    def image(self, index: int) -> torch.Tensor:
        return self._oriented(index, int(self.targets[index]))

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        orientation = int(self.targets[index]) if self.every or seed is None else seed % self.k
        image = self._oriented(index, orientation)
        if self.augment is not None and seed is not None:
            image = self.augment(image, seed // self.k)
        return image, torch.tensor(orientation)


class EpochSampler(Sampler):
    """Yields ``(index, augmentation seed)`` pairs; order and seeds depend only on (seed, epoch).

    ``weights`` turns on sampling with replacement (oversampling); ``num_replicas``/``rank``
    shard an epoch between DDP processes (every rank gets the same number of samples);
    ``skip`` drops the first samples of one epoch, which is how a run resumes mid-epoch.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, weights: torch.Tensor | None = None,
                 num_replicas: int = 1, rank: int = 0):
        self.n, self.seed, self.shuffle, self.weights = n, int(seed), shuffle, weights
        self.num_replicas, self.rank = max(1, num_replicas), rank
        self.epoch = 0
        self._skip: tuple[int, int] | None = None
        self.per_rank = math.ceil(n / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip(self, epoch: int, samples: int) -> None:
        self._skip = (int(epoch), int(samples))

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[tuple[int, int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=gen)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=gen)
        total = self.per_rank * self.num_replicas
        if total > self.n:  # pad by wrapping so every rank has the same number of samples
            pad = torch.arange(total - self.n) % self.n
            order, seeds = torch.cat([order, order[pad]]), torch.cat([seeds, seeds[pad]])
        order, seeds = order[self.rank::self.num_replicas], seeds[self.rank::self.num_replicas]
        start = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            start = self._skip[1]
            self._skip = None
        for i in range(start, len(order)):
            yield int(order[i]), int(seeds[i])
