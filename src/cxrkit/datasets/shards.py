"""Pre-resized uint8 WebDataset shards: write once, stream fast for training.

Each sample in a shard is three tar members sharing a key: ``<key>.image.npy`` (HxW
uint8, the model-range image mapped to 0..255), ``<key>.labels.npy`` (float32 over the
shard set's label list, NaN = unknown) and ``<key>.meta.json``. ``dataset.json`` beside
the shards records the label list, image size and sample count. The files are plain
WebDataset tars, readable by the ``webdataset`` library; :class:`ShardDataset` is a
dependency-free reader that splits shards by rank and worker and shuffles with a seed.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
import random
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..atomic import atomic_path, remove_temporaries, write_text_atomic
from ..errors import CxrkitError, OutputError
from .errors import DatasetError

__all__ = ["to_uint8", "from_uint8", "write_shards", "ShardDataset", "read_index"]

log = logging.getLogger(__name__)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Model-range float image ([-1024, 1024]) -> uint8 (0..255), rounding to nearest."""
    x = np.asarray(image, dtype=np.float32)
    return np.clip(np.rint((x + 1024.0) * (255.0 / 2048.0)), 0, 255).astype(np.uint8)


def from_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> model range, exactly :func:`cxrkit.preprocess.normalize` with maxval 255."""
    return (2.0 * (pixels.astype(np.float32) / np.float32(255.0)) - 1.0) * np.float32(1024.0)


def _resized(dataset: Any, size: int) -> Any:
    """A shallow copy of a dataset (or of each part of a merge) that loads images at ``size``."""
    if hasattr(dataset, "datasets"):  # MergedDataset
        out = copy.copy(dataset)
        out.datasets = [_resized(d, size) for d in dataset.datasets]
        return out
    if hasattr(dataset, "parent"):  # MergedSubset
        out = copy.copy(dataset)
        out.parent = _resized(dataset.parent, size)
        return out
    out = copy.copy(dataset)
    out.size, out.transform = size, None
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _write_shard(path: Path, source: Any, first: int, stop: int, progress: Callable[[int, int], None] | None,
                 n: int) -> None:
    """Samples ``first..stop-1`` as one tar, written atomically: visible only once complete."""
    with atomic_path(path) as temp, tarfile.open(temp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(first, stop):
            sample = source[i]
            key = f"{i:09d}"
            meta = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in sample["meta"].items()}
            _add(tar, f"{key}.image.npy", _npy(to_uint8(sample["image"][0])))
            _add(tar, f"{key}.labels.npy", _npy(np.asarray(sample["labels"], dtype=np.float32)))
            _add(tar, f"{key}.meta.json", json.dumps(meta).encode())
            if progress is not None:
                progress(i + 1, n)


def write_shards(dataset: Any, out_dir: str | os.PathLike, size: int = 256, samples_per_shard: int = 1000,
                 prefix: str = "shard", progress: Callable[[int, int], None] | None = None,
                 resume: bool = False) -> dict[str, Any]:
    """Write ``dataset`` as uint8 shards of ``size`` px (centre-cropped, area-resized) under ``out_dir``.

    Returns the index that is also written to ``out_dir/dataset.json``. Any dataset with
    the cxrkit sample interface works (a single dataset, a merge, a split of either).

    Every shard and the index are written atomically, so a killed job never leaves a
    torn tar under a shard's name, and ``dataset.json`` (written last) only appears once
    every shard is complete. The plan (the index to be written) is saved first as a hidden
    file; with ``resume`` a rerun with the same settings keeps the shards already written
    and writes the rest, byte for byte what one uninterrupted run writes (tar members carry
    no timestamps). A different plan is refused rather than mixed into the old shards.
    """
    if size < 1 or samples_per_shard < 1:
        raise DatasetError(f"shard image size and samples per shard must be 1 or more, got {size} and "
                           f"{samples_per_shard}")
    out = Path(out_dir)
    source = _resized(dataset, size)
    n = len(source)
    if n == 0:
        raise DatasetError(f"{getattr(dataset, 'name', 'the dataset')}: no samples to write (every image filtered "
                           "out or none found)")
    try:
        return _write_all(dataset, source, out, n, size, samples_per_shard, prefix, progress, resume)
    except CxrkitError:  # e.g. a missing image (also an OSError): not the output's fault
        raise
    except OSError as exc:  # a file in the way, a read-only or full disk: name the folder; resuming keeps the shards
        raise OutputError(exc.filename or out, exc.strerror or str(exc)) from None


def _write_all(dataset: Any, source: Any, out: Path, n: int, size: int, samples_per_shard: int, prefix: str,
               progress: Callable[[int, int], None] | None, resume: bool) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}-{k:06d}.tar" for k in range(math.ceil(n / samples_per_shard))]
    index = {"format": "cxrkit-shards/1", "dataset": getattr(dataset, "name", ""), "size": size, "count": n,
             "labels": list(dataset.label_names), "samples_per_shard": samples_per_shard, "shards": names}
    plan_path = out / f".{prefix}.plan.json"
    done: set[str] = set()
    if resume and not plan_path.is_file() and _same_index(out, index):
        return index  # finished before: nothing to do
    if resume and plan_path.is_file():
        try:
            planned = json.loads(plan_path.read_text())
        except ValueError:
            planned = None
        if planned != index:
            raise DatasetError(f"{out}: its shards were started with other settings or another dataset "
                               f"({plan_path.name} differs); write them to a new folder or start over")
        done = {name for name in names if (out / name).is_file()}
        remove_temporaries(out, f"{prefix}-*.tar")  # the shard a kill interrupted
    else:
        (out / "dataset.json").unlink(missing_ok=True)  # the old index must not describe the new shards
        write_text_atomic(plan_path, json.dumps(index, indent=1))
    start = time.perf_counter()
    for k, name in enumerate(names):
        first, stop = k * samples_per_shard, min(n, (k + 1) * samples_per_shard)
        if name in done:
            if progress is not None:
                progress(stop, n)
            continue
        _write_shard(out / name, source, first, stop, progress, n)
    write_text_atomic(out / "dataset.json", json.dumps(index, indent=1))
    plan_path.unlink(missing_ok=True)
    log.info("wrote %d samples in %d shards (%d kept from before) to %s in %.1f s", n, len(names), len(done), out,
             time.perf_counter() - start)
    return index


def _same_index(out: Path, index: dict[str, Any]) -> bool:
    try:
        return read_index(out) == index and all((out / name).is_file() for name in index["shards"])
    except (OSError, ValueError):
        return False


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The ``dataset.json`` of a shard folder."""
    return json.loads((Path(path) / "dataset.json").read_text())


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _read_tar(path: Path) -> Iterator[dict[str, Any]]:
    current: dict[str, Any] = {}
    key = None
    with tarfile.open(path, "r") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            k, _, field = member.name.partition(".")
            if key is not None and k != key:
                yield current
                current = {}
            key = k
            current["__key__"] = k
            current[field] = handle.read()
    if current:
        yield current


class ShardDataset(IterableDataset):
    """Stream samples from shards: shards split across ranks then workers, shuffled per epoch.

    Each epoch every sample is read exactly once across all ranks and workers (shards are
    dealt round-robin; with fewer shards than readers some readers idle). ``shuffle`` is
    the sample buffer size (0 = file order); the order depends on ``seed`` and the epoch
    set with :meth:`set_epoch`. Samples are dicts like a dataset's, with ``image`` as a
    (1, H, W) float32 array in [-1024, 1024] (or uint8 with ``raw=True``).
    """

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike], shuffle: int = 0, seed: int = 0,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None, raw: bool = False):
        if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
            index = read_index(path)
            self.urls = [Path(path) / s for s in index["shards"]]
            self.label_names = tuple(index["labels"])
            self.count: int | None = int(index["count"])
        else:
            paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
            self.urls = [Path(p) for p in paths]
            self.label_names, self.count = (), None
        self.shuffle, self.seed, self.transform, self.raw = shuffle, seed, transform, raw
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.count is None:
            raise TypeError("length unknown: open the shard folder (with dataset.json) instead of shard files")
        return self.count

    def my_shards(self) -> list[Path]:
        rank, world = _rank_world()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        urls = list(self.urls)
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(urls)
        return urls[rank::world][worker::workers]

    def _decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        pixels = np.load(io.BytesIO(raw["image.npy"]), allow_pickle=False)
        sample = {
            "image": pixels[None] if self.raw else from_uint8(pixels)[None],
            "labels": np.load(io.BytesIO(raw["labels.npy"]), allow_pickle=False),
            "meta": {k: (float("nan") if v is None and k == "age" else v)
                     for k, v in json.loads(raw["meta.json"]).items()},
        }
        return self.transform(sample) if self.transform is not None else sample

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        rng = random.Random((self.seed, self.epoch, info.id if info else 0).__hash__())
        buffer: list[dict[str, Any]] = []
        for url in self.my_shards():
            for raw in _read_tar(url):
                if not self.shuffle:
                    yield self._decode(raw)
                    continue
                buffer.append(raw)
                if len(buffer) >= self.shuffle:
                    yield self._decode(buffer.pop(rng.randrange(len(buffer))))
        rng.shuffle(buffer)
        for raw in buffer:
            yield self._decode(raw)
