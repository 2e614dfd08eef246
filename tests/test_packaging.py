"""The package a user installs, not the source tree: build sdist + wheel, install the wheel, run it.

An editable install hides packaging mistakes (a data file missing from ``package-data`` is
still on disk beside the source), so this builds the sdist, builds the wheel *from that sdist*
(as ``python -m build`` does, which also proves the sdist is complete), unpacks the wheel into a
folder of its own and runs ``cxr predict examples/`` from another directory with only that folder
ahead of the environment's packages. torch and the other dependencies come from the running
environment, so nothing is downloaded.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "cxrkit"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs `build` (pip install build)"),
    pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools to build"),
]


def _shipped_data() -> set[str]:
    """Every non-Python file the package must carry, as wheel paths (from the source tree)."""
    wanted = {"cxrkit/py.typed"}
    for folder, pattern in (("models", "*.json"), ("models/weights", "*.json"), ("models/weights", "*.safetensors"),
                            ("serve/static", "*")):
        for path in (PACKAGE / folder).glob(pattern):
            if path.is_file():
                wanted.add(f"cxrkit/{folder}/{path.name}")
    return wanted


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: build with the environment's setuptools instead of downloading one
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels, sdists = list(out.glob("cxrkit-*.whl")), list(out.glob("cxrkit-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_wheel_carries_weights_cards_page_and_py_typed(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    wanted = _shipped_data()
    assert any(n.endswith(".safetensors") for n in wanted) and any(n.startswith("cxrkit/serve/static/") for n in wanted)
    assert not wanted - names, f"missing from the wheel: {sorted(wanted - names)}"
    # no test, cache or build debris rides along
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/") or n.endswith(".pyc")]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(built["wheel"]).read(metadata).decode()
    assert "Requires-Dist: torch>=" in text and "torch==" not in text  # a range, not a pin


def test_installed_wheel_predicts_the_examples(built, tmp_path):
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                              "--target", str(target), str(built["wheel"])], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    cwd = tmp_path / "elsewhere"  # not the repository root: src/ must not be importable by accident
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}

    where = subprocess.run([sys.executable, "-c", "import cxrkit; print(cxrkit.__file__); print(cxrkit.__version__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    location, version = where.stdout.split()
    assert Path(location).is_relative_to(target), location
    assert version == built["wheel"].name.split("-")[1]  # one version source: the wheel's metadata

    cli = [sys.executable, "-m", "cxrkit.cli.main"]
    shown = subprocess.run([*cli, "--version"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.strip() == f"cxr (cxrkit) {version}", shown.stdout + shown.stderr

    run = subprocess.run([*cli, "predict", str(REPO / "examples"), "-o", "preds.csv"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(cwd / "preds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and all(r["status"] == "ok" for r in rows), [(r["file"], r["status"], r["error"]) for r in rows]
    # real probabilities from the bundled model, not empty cells
    assert all(0.0 < float(r["Cardiomegaly"]) < 1.0 for r in rows)
