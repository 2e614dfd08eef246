"""The atomic-write helper: a reader sees the old file or the complete new one, never a part.

Why: weights, cards, shards and their index are read back whole; the kill tests show the
end-to-end promise, these pin down the helper's own contract (failure keeps the target,
leaves no temporary file, permissions follow the umask like a plain write).
"""

from __future__ import annotations

import os

import pytest
import torch

from cxrkit.atomic import TEMP_SUFFIX, atomic_path, write_bytes_atomic, write_text_atomic
from cxrkit.errors import WeightsError
from cxrkit.models import ModelCard, create, save_weights


def test_write_replaces_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "sub dir" / "index.json"
    write_text_atomic(target, "first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(target) as temp:
            assert temp.parent == target.parent and temp.name.startswith(".") and temp.name.endswith(TEMP_SUFFIX)
            temp.write_bytes(b"half a")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_permissions_follow_the_umask_like_a_plain_write(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    atomic = write_bytes_atomic(tmp_path / "atomic", b"x")
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_concurrent_writers_get_their_own_temporary_files(tmp_path):
    target = tmp_path / "card.json"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("a")
        second.write_text("b")
    assert target.read_text() == "a"  # the outer block finishes last
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_save_weights_writes_nothing_when_the_card_is_invalid(tmp_path):
    """The card is checked before the weights are written: no orphan weight file."""
    bad = ModelCard(name="t", architecture="resnet18", labels=["Mass", "Mass"], input_size=64)
    torch.manual_seed(0)
    with pytest.raises(WeightsError, match="duplicate"):
        save_weights(create("resnet18", labels=["Mass", "Effusion"]), bad, tmp_path / "t.safetensors")
    assert os.listdir(tmp_path) == []
