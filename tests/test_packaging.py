"""The package a user installs, not the source tree: build sdist + wheel, install the wheel, run it.

An editable install hides packaging mistakes (a data file missing from ``package-data`` is
still on disk beside the source), so this builds the sdist, builds the wheel *from that sdist*
(as ``python -m build`` does, which also proves the sdist is complete), unpacks the wheel into a
folder of its own and runs ``cxr predict examples/`` from another directory with only that folder
ahead of the environment's packages. torch and the other dependencies come from the running
environment, so nothing is downloaded.
"""

from __future__ import annotations

import ast
import csv
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "cxrkit"

def needs_build(test):
    """The build-and-install tests: slow (a minute or more on two cores), run subprocesses."""
    for mark in (pytest.mark.slow, pytest.mark.subprocess,
                 pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs `build` (pip install build)"),
                 pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools to build")):
        test = mark(test)
    return test


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _pins(name: str) -> dict[str, str]:
    """``{package: version}`` of a constraints file (``name==version`` lines)."""
    pins = {}
    for line in (REPO / "constraints" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            package, version = line.split("==")
            pins[package.lower().replace("_", "-")] = version
    return pins


def _requirements() -> list[str]:
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *(r for group in extras.values() for r in group if not r.startswith("cxrkit["))]


def test_ranges_not_pins_and_no_python_cap():
    project = _pyproject()["project"]
    assert project["requires-python"] == ">=3.11"
    assert "version" in project and "dynamic" not in project  # the one place the version is written
    for requirement in project["dependencies"]:
        assert "==" not in requirement and "<" not in requirement, requirement  # no pin, no unjustified cap


def test_floor_file_installs_exactly_the_declared_floors():
    """constraints/floor.txt is what scripts/check_floor.sh installs: it must be pyproject's floors."""
    floors = {}
    for requirement in _requirements():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^]]*\])?>=([0-9][^,;]*)", requirement)
        if match:
            floors[match.group(1).lower().replace("_", "-")] = match.group(2)
    pinned = _pins("floor.txt")
    for package in _pyproject()["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.\-]+", package).group(0).lower()
        assert name in pinned, f"{name}: a core dependency whose floor is not installed by check_floor.sh"
    for package, version in pinned.items():
        assert package in floors, f"{package} is in floor.txt but has no floor in pyproject.toml"
        declared = tuple(int(x) for x in floors[package].split("."))
        tested = tuple(int(x) for x in version.split("."))
        assert tested[: len(declared)] == declared and not any(tested[len(declared):]), (
            f"{package}: pyproject.toml says >={floors[package]}, floor.txt installs {version}")


def test_ci_pins_lie_inside_the_declared_ranges():
    from packaging.requirements import Requirement

    pinned = _pins("ci.txt")
    for text in _requirements():
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        if name in pinned:
            assert requirement.specifier.contains(pinned[name], prereleases=True), f"ci.txt {name}=={pinned[name]} vs {text}"
    assert {"torch", "torchvision", "typer", "numpy"} <= set(pinned)


def test_version_comes_from_the_installed_metadata():
    import cxrkit

    assert cxrkit.__version__ == importlib.metadata.version("cxrkit")


def test_cxr_version_flag():
    from typer.testing import CliRunner

    from cxrkit import __version__
    from cxrkit.cli.main import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"cxr (cxrkit) {__version__}"


def test_no_private_typer_or_click_module_is_imported():
    """typer's own copy of click (typer._click) exists only from typer 0.26; cxr must start on 0.16."""
    private = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            private += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if re.match(r"(typer|click)\.(.*\.)?_", n)]
    assert not private


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


@needs_build
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
    # the licence travels with the code it licenses
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert "Apache" in text


@needs_build
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
