"""Shards: round trip of real images (pixels = the pre-resized uint8), exactly-once streaming."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cxrkit.datasets import get_dataset
from cxrkit.datasets.shards import ShardDataset, from_uint8, to_uint8, write_shards

SIZE = 64
N = 45


@pytest.fixture(scope="module")
def written(nih_subset, tmp_path_factory):
    images, labels = nih_subset
    ds = get_dataset("nih", images, labels).subset(np.arange(N))
    out = tmp_path_factory.mktemp("shards")
    index = write_shards(ds, out, size=SIZE, samples_per_shard=10)
    return ds, out, index


def test_index_and_files(written):
    ds, out, index = written
    assert index["count"] == N and len(index["shards"]) == 5 and index["labels"] == list(ds.label_names)
    assert json.loads((out / "dataset.json").read_text()) == index
    assert all((out / s).stat().st_size > 0 for s in index["shards"])


def test_round_trip_equals_pre_resized_uint8(written):
    ds, out, _ = written
    sized = get_dataset("nih", ds.root, ds.files["labels"], size=SIZE)
    got = {s["meta"]["index"]: s for s in ShardDataset(out, raw=True)}
    assert sorted(got) == list(range(N))
    for i in range(N):
        s = got[i]
        expected = to_uint8(sized[i]["image"][0])
        assert s["image"].dtype == np.uint8 and s["image"].shape == (1, SIZE, SIZE)
        np.testing.assert_array_equal(s["image"][0], expected)
        np.testing.assert_array_equal(s["labels"], ds.labels[i])
        assert s["meta"] == ds.meta(i)
    decoded = next(iter(ShardDataset(out)))
    assert decoded["image"].dtype == np.float32
    np.testing.assert_allclose(decoded["image"], from_uint8(got[decoded["meta"]["index"]]["image"]))
    # uint8 quantisation is the only loss: within half a grey level of the float image
    assert np.abs(from_uint8(to_uint8(sized[0]["image"])) - sized[0]["image"]).max() <= 1024 / 255 + 1e-3


def _keys(loader):
    keys = []
    for batch in loader:
        keys += [int(i) for i in batch["meta"]["index"]]
    return keys


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_each_sample_once_per_epoch_with_workers(written, workers):
    _, out, _ = written
    ds = ShardDataset(out, shuffle=8, seed=1)
    loader = DataLoader(ds, batch_size=4, num_workers=workers)
    for epoch in range(2):
        ds.set_epoch(epoch)
        keys = _keys(loader)
        assert sorted(keys) == list(range(N)), (workers, epoch)
    assert len(ds) == N


def test_ranks_partition_the_shards(written, monkeypatch):
    _, out, _ = written
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        keys = [s["meta"]["index"] for s in ShardDataset(out, shuffle=4, seed=3)]
        assert keys
        seen += keys
    assert sorted(seen) == list(range(N))


def test_shuffle_is_seeded(written):
    _, out, _ = written
    a = [s["meta"]["index"] for s in ShardDataset(out, shuffle=16, seed=5)]
    b = [s["meta"]["index"] for s in ShardDataset(out, shuffle=16, seed=5)]
    c = [s["meta"]["index"] for s in ShardDataset(out, shuffle=16, seed=6)]
    assert a == b and a != c and a != sorted(a)


def test_webdataset_library_reads_the_shards_once_per_worker_split(written):
    wds = pytest.importorskip("webdataset")
    _, out, index = written
    urls = [str(out / s) for s in index["shards"]]

    def decode(sample):
        return {"index": json.loads(sample["meta.json"])["index"],
                "image": np.load(io.BytesIO(sample["image.npy"]))}

    pipeline = wds.WebDataset(urls, shardshuffle=False, workersplitter=wds.split_by_worker,
                              empty_check=False).map(decode)
    keys = []
    for batch in DataLoader(pipeline, batch_size=None, num_workers=2):
        keys.append(int(batch["index"]))
        assert batch["image"].shape == (SIZE, SIZE)
    assert sorted(keys) == list(range(N))


def test_merge_can_be_sharded(written, tmp_path):
    from cxrkit.datasets.merge import merge

    ds, _, _ = written
    merged = merge([ds.subset(np.arange(3)), ds.subset(np.arange(3, 5))])
    index = write_shards(merged, tmp_path, size=32, samples_per_shard=100)
    samples = list(ShardDataset(tmp_path))
    assert index["count"] == 5 and [s["meta"]["index"] for s in samples] == [0, 1, 2, 3, 4]
    assert samples[4]["image"].shape == (1, 32, 32)
    assert torch.is_tensor(torch.as_tensor(samples[0]["labels"]))


def test_round_trip_without_shared_data(tmp_path):
    """The same contract on generated images, so a bare clone tests shards too."""
    import cv2

    from cxrkit.datasets import folder_dataset

    rng = np.random.default_rng(0)
    for i in range(7):
        (tmp_path / "img" / ("Mass" if i % 2 else "Nodule")).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "img" / ("Mass" if i % 2 else "Nodule") / f"{i}.png"),
                    rng.integers(0, 256, size=(50, 70), dtype=np.uint8))
    ds = folder_dataset(tmp_path / "img")
    write_shards(ds, tmp_path / "out", size=24, samples_per_shard=3)
    sized = folder_dataset(tmp_path / "img", size=24)
    got = {s["meta"]["index"]: s for s in ShardDataset(tmp_path / "out", raw=True)}
    assert sorted(got) == list(range(7))
    for i, s in got.items():
        np.testing.assert_array_equal(s["image"][0], to_uint8(sized[i]["image"][0]))
        np.testing.assert_array_equal(s["labels"], ds.labels[i])
        meta, want = dict(s["meta"]), ds.meta(i)
        assert np.isnan(meta.pop("age")) and np.isnan(want.pop("age")) and meta == want
    keys = _keys(DataLoader(ShardDataset(tmp_path / "out", shuffle=2), batch_size=2, num_workers=2))
    assert sorted(keys) == list(range(7))
