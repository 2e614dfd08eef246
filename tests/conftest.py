"""Shared test fixtures: where the real data lives, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("CXRKIT_SHARED_DATA", REPO.parent / "shared" / "data"))

# One thread per test process: the CI machine has two cores and oversubscription is slow.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data (real NIH images, DICOMs, label files); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED


@pytest.fixture(scope="session")
def example_images() -> list[Path]:
    """The PNG radiographs committed under examples/ (always present)."""
    return sorted(EXAMPLES.glob("*.png"))


@pytest.fixture()
def cxrkit_home(tmp_path, monkeypatch) -> Path:
    """An empty per-test model cache, so tests never touch ~/.cache/cxrkit."""
    home = tmp_path / "cxrkit_home"
    monkeypatch.setenv("CXRKIT_HOME", str(home))
    return home
