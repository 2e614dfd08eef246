"""Hostile or broken model files are refused with one clear line, and nothing in them runs.

Why: weight files travel by e-mail and shared drives; a truncated copy, a card edited by
hand, or a pickle that runs a command when loaded must each stop the command with a
message that says what is wrong, not a torch traceback or silently wrong scores.
Earlier tests cover a flipped byte (test_registry), a card without sha256 and weights of
another architecture; these add the rest, each through the real ``cxr`` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.errors import ChecksumMismatch, ModelNotFound, WeightsError
from cxrkit.models import ModelCard, create, save_weights

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "00001036_000.png"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A small, valid weight file and card (ResNet-18, two labels)."""
    folder = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    card = ModelCard(name="resnet18.abuse", architecture="resnet18", labels=["Effusion", "Mass"], input_size=64)
    save_weights(create("resnet18", labels=["Effusion", "Mass"]), card, folder / "good.safetensors")
    return folder / "good.safetensors"


def _copy(good: Path, folder: Path, name: str, **card_changes) -> Path:
    """A copy of the good model under ``name`` with the given card fields changed."""
    weights = folder / f"{name}.safetensors"
    shutil.copy(good, weights)
    card = json.loads(good.with_suffix(".json").read_text())
    card.update(weights_file=weights.name, **card_changes)
    weights.with_suffix(".json").write_text(json.dumps(card))
    return weights


def _refused(args: list[str], *needles: str) -> str:
    """Run ``cxr ARGS`` in-process: exit 1, exactly one line on stderr holding every needle, no traceback."""
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1, (result.exit_code, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _predict(model: Path) -> list[str]:
    return ["predict", str(EXAMPLE), "--model", str(model)]


def test_truncated_weights_are_refused_by_the_checksum(good, tmp_path):
    weights = _copy(good, tmp_path, "cut")
    weights.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ChecksumMismatch, match="does not match its card"):
        create(weights)
    _refused(_predict(weights), str(weights), "does not match its card")


def test_truncated_weights_with_a_matching_checksum_are_refused_as_unreadable(good, tmp_path):
    """Someone re-hashed a cut file: the checksum passes, safetensors' own header check does not."""
    for size in (0, 7, 5000, good.stat().st_size - 1):
        data = good.read_bytes()[:size]
        weights = _copy(good, tmp_path, f"cut{size}", sha256=hashlib.sha256(data).hexdigest())
        weights.write_bytes(data)
        with pytest.raises(WeightsError, match="not a readable safetensors file"):
            create(weights)
    _refused(_predict(weights), str(weights), "not a readable safetensors file")


def test_card_listing_more_labels_than_the_head_is_refused(good, tmp_path):
    weights = _copy(good, tmp_path, "more", labels=["Effusion", "Mass", "Edema"])
    with pytest.raises(WeightsError, match="do not fit its card"):
        create(weights)
    line = _refused(_predict(weights), "resnet18.abuse", "do not fit its card", "(2,) in the file but (3,)",
                    "3 labels")
    assert "RuntimeError" not in line
    fewer = _copy(good, tmp_path, "fewer", labels=["Effusion"])
    _refused(_predict(fewer), "do not fit its card", "1 labels")


def test_wrong_sha256_in_the_card_is_refused_naming_both(good, tmp_path):
    weights = _copy(good, tmp_path, "sha", sha256="0" * 64)
    actual = hashlib.sha256(good.read_bytes()).hexdigest()
    _refused(_predict(weights), str(weights), actual, "0" * 64, "corrupt or was replaced")
    _refused(["age", str(EXAMPLE), "--model", str(weights)], "does not match its card")


def test_card_naming_an_unknown_architecture_is_refused_with_the_choices(good, tmp_path):
    weights = _copy(good, tmp_path, "arch", architecture="vit_giant_9000")
    with pytest.raises(ModelNotFound):
        create(weights)
    _refused(_predict(weights), "unknown architecture 'vit_giant_9000'", "densenet121", "resnet18")


class _Bomb:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _bombs(folder: Path, marker: Path) -> dict[str, Path]:
    bomb = _Bomb(marker)
    files = {name: folder / f"{name}.pt" for name in ("alone", "beside_tensors", "in_module_attributes")}
    torch.save(bomb, files["alone"])
    torch.save({"state_dict": {"features.denseblock1.w": torch.zeros(2)}, "payload": bomb}, files["beside_tensors"])
    module = torch.nn.Linear(2, 2)
    module.pathologies = bomb  # TorchXRayVision keeps plain values on its pickled modules
    torch.save(module, files["in_module_attributes"])
    files["raw_pickle"] = folder / "raw.pkl"
    files["raw_pickle"].write_bytes(pickle.dumps(bomb))
    return files


def test_pickle_bombs_passed_to_models_import_run_nothing(tmp_path):
    """Each bomb is refused (or, beside real tensors, dropped) and the marker never appears."""
    marker = tmp_path / "pwned"
    for name, path in _bombs(tmp_path, marker).items():
        out = tmp_path / f"{name}.safetensors"
        result = CliRunner().invoke(app, ["models", "import", str(path), "-o", str(out)])
        assert not marker.exists(), f"{name}: the pickle ran a command"
        assert "Traceback" not in result.stderr
        assert result.exit_code == 1, (name, result.stderr, result.exception)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and str(path) in lines[0], (name, lines)
        assert not out.exists() and not out.with_suffix(".json").exists()
    # the same files straight through torch's safe loader: refused, nothing runs
    for path in tmp_path.glob("*.pt"):
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
    assert not marker.exists()
