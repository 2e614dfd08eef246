"""Listing models reads cards and names, never PyTorch: ``cxr models list`` starts in a fraction
of the time (importing torch was most of it), and the architecture modules still load on first use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from cxrkit.models import _registry, get_architecture

HEAVY = ("torch", "torchvision", "timm", "safetensors.torch")


def _probe(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.subprocess
def test_models_list_imports_no_torch():
    probe = ("import sys; from cxrkit.cli.main import main; sys.argv = ['cxr', 'models', 'list', '--format', 'json']\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
             "print('IMPORTED', heavy)")
    out = _probe(probe)
    assert "IMPORTED []" in out, out[-2000:]
    listing = json.loads(out[: out.index("IMPORTED")])
    assert "densenet121.nih-demo" in {m["name"] for m in listing["models"]}
    assert {"densenet121", "resnet18", "small_resnet_ae"} <= set(listing["architectures"])


@pytest.mark.subprocess
def test_library_listing_imports_no_torch_and_an_architecture_loads_on_first_use():
    out = _probe("import sys\n"
                 "from cxrkit.models import list_architectures, list_models, resolve_card\n"
                 "cards, archs = list_models(), list_architectures()\n"
                 "resolve_card('densenet121.nih-demo')\n"
                 "print('BEFORE', 'torch' in sys.modules, 'cxrkit.models.resnet' in sys.modules)\n"
                 "from cxrkit.models import get_architecture\n"
                 "print('AFTER', get_architecture('resnet18').family, 'cxrkit.models.resnet' in sys.modules)\n")
    assert "BEFORE False False" in out and "AFTER resnet True" in out, out


def test_built_in_names_are_exactly_what_their_modules_register():
    """The name table that lists architectures without importing them cannot drift from the code."""
    for module in set(_registry.BUILT_IN.values()):
        importlib.import_module(f"cxrkit.models.{module}")
    registered = {name: arch.builder.__module__ for name, arch in _registry._ARCHITECTURES.items()
                  if arch.builder.__module__.startswith("cxrkit.models.")}
    assert registered == {name: f"cxrkit.models.{module}" for name, module in _registry.BUILT_IN.items()}
    assert get_architecture("densenet121").input_size == 224
