"""Tiny synthetic datasets and a tiny architecture, so every training test runs in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cxrkit.models import CxrModel, list_architectures, register_model

TINY = "test-tinycnn"


class TinyCNN(CxrModel):
    """Two conv layers + BN + a linear head, with the cxrkit model surface."""

    num_features = 16

    def __init__(self, num_classes: int = 3, in_chans: int = 1, drop_rate: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )
        self.classifier = nn.Linear(16, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x / 1024.0)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(16, num_classes)


if TINY not in list_architectures():
    @register_model(TINY, input_size=32, family="test", filter_fn=lambda state, model=None: state)
    def _tiny(num_classes: int = 3, in_chans: int = 1, **kwargs) -> TinyCNN:
        """A tiny CNN for tests."""
        return TinyCNN(num_classes, in_chans, **kwargs)


def _write_image(path: Path, rng: np.random.Generator, bright: bool) -> None:
    pixels = rng.integers(0, 120, size=(40, 48), dtype=np.uint8)
    if bright:
        pixels[10:30, 12:36] += 120
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    """40 PNGs (two per patient) with labels A/B/C (some blank = unknown) and an age column."""
    root = tmp_path_factory.mktemp("tiny_csv")
    rng = np.random.default_rng(0)
    rows = ["path,patient,age,A,B,C"]
    for i in range(40):
        a = int(rng.integers(0, 2))
        b = int(rng.integers(0, 2))
        c = "" if i % 5 == 0 else str(int(rng.integers(0, 2)))
        name = f"img{i:03d}.png"
        _write_image(root / name, rng, bright=bool(a))
        rows.append(f"{name},p{i // 2},{30 + i},{a},{b},{c}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory) -> Path:
    """Three class folders (normal / pneumonia / covid) of 12 PNGs each."""
    root = tmp_path_factory.mktemp("tiny_folders")
    rng = np.random.default_rng(1)
    for k, name in enumerate(["covid", "normal", "pneumonia"]):
        (root / name).mkdir()
        for i in range(12):
            _write_image(root / name / f"{name}{i:02d}.png", rng, bright=k == 0)
    return root


def tiny_config(root: Path, tmp: Path, **extra) -> dict:
    """A raw config dict for the tiny CSV dataset; ``extra`` overrides top-level sections."""
    cfg = {
        "name": "test.tiny",
        "task": "multilabel",
        "seed": 0,
        "output_dir": str(tmp / "run"),
        "model": {"architecture": TINY, "input_size": 32},
        "data": {
            "dataset": "csv", "root": str(root), "label_file": str(root / "labels.csv"),
            "csv": {"path_column": "path", "patient_column": "patient", "age_column": "age",
                    "label_columns": ["A", "B", "C"]},
            "split": {"train": 0.7, "valid": 0.3}, "batch_size": 4,
        },
        "optim": {"name": "adamw", "lr": 0.01},
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "precision": "bf16-mixed", "log_every_n_steps": 1},
        "select": {"bootstrap": 20},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg
