"""Training-input throughput: torchxrayvision's NIH dataset vs cxrkit's, from PNG and from shards.

All three paths produce the same training input: centre crop, resize to 256 px, then the same
augmentation (random 224 px crop + random horizontal flip), one sample at a time in one
process with one torch thread ("per core"). Prints samples/s and the ratios.

    python benchmarks/dataloader.py [--images DIR --labels CSV] [--n-png 200] [--epochs 3]

torchxrayvision resizes with skimage (its default engine); cxrkit with OpenCV area
interpolation. The shards are written once before timing (their build time is printed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "data" / "nih"
LOAD, CROP = 256, 224


class Augment:
    """Random 224 px crop + random horizontal flip on a (1, H, W) array, seeded."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _, h, w = image.shape
        top, left = self.rng.integers(0, h - CROP + 1), self.rng.integers(0, w - CROP + 1)
        out = image[:, top:top + CROP, left:left + CROP]
        if self.rng.random() < 0.5:
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out, dtype=np.float32)


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def bench_xrv(images: Path, labels: Path, n: int) -> float:
    import torchvision
    import torchxrayvision as xrv

    aug = Augment()
    transform = torchvision.transforms.Compose([xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(LOAD)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = np.random.get_state()
        ds = xrv.datasets.NIH_Dataset(str(images), str(labels), views="*", unique_patients=False, transform=transform)
        np.random.set_state(state)

        def one(i):
            sample = ds[i % len(ds)]
            return aug(sample["img"]), sample["lab"]

        one(0)
        return rate(one, n)


def bench_cxrkit(images: Path, labels: Path, n: int) -> float:
    from cxrkit.datasets import get_dataset

    aug = Augment()
    ds = get_dataset("nih", images, labels, size=LOAD, transform=lambda s: {**s, "image": aug(s["image"])})
    ds[0]
    return rate(lambda i: ds[i % len(ds)], n)


def bench_shards(images: Path, labels: Path, epochs: int, out: Path) -> tuple[float, float, int]:
    from cxrkit.datasets import get_dataset
    from cxrkit.datasets.shards import ShardDataset, write_shards

    ds = get_dataset("nih", images, labels)
    start = time.perf_counter()
    write_shards(ds, out, size=LOAD, samples_per_shard=250)
    build = time.perf_counter() - start
    aug = Augment()
    reader = ShardDataset(out, shuffle=256, seed=0, transform=lambda s: {**s, "image": aug(s["image"])})
    count = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        reader.set_epoch(epoch)
        for _ in reader:
            count += 1
    return count / (time.perf_counter() - start), build, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT / "images")
    parser.add_argument("--labels", type=Path, default=DEFAULT / "Data_Entry_2017_v2020.csv")
    parser.add_argument("--n-png", type=int, default=200, help="samples timed on each PNG path")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the shards")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)

    xrv_rate = bench_xrv(args.images, args.labels, args.n_png)
    ours = bench_cxrkit(args.images, args.labels, args.n_png)
    with tempfile.TemporaryDirectory() as tmp:
        shard_rate, build, count = bench_shards(args.images, args.labels, args.epochs, Path(tmp))
    print(f"input: {args.images} ({args.labels.name}), {LOAD} px load, {CROP} px random crop + flip, 1 thread")
    print(f"(a) torchxrayvision NIH_Dataset, PNG, skimage resize : {xrv_rate:8.1f} samples/s  ({args.n_png} samples)")
    print(f"(b) cxrkit dataset, PNG, OpenCV area resize          : {ours:8.1f} samples/s  ({args.n_png} samples)")
    print(f"(c) cxrkit uint8 shards ({LOAD} px)                    : {shard_rate:8.1f} samples/s  ({count} samples;"
          f" shards built in {build:.1f} s)")
    print(f"ratios: cxrkit PNG / xrv = {ours / xrv_rate:.1f}x, shards / xrv = {shard_rate / xrv_rate:.1f}x,"
          f" shards / cxrkit PNG = {shard_rate / ours:.1f}x")


if __name__ == "__main__":
    main()
