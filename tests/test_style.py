"""The lint and type checks CI runs, as tests: ``ruff check src tests`` and ``mypy`` (both
configured in pyproject.toml) must report nothing.

Kept as tests so a local ``pytest`` run catches what CI would, with the findings in the
failure message. Both tools come with the ``dev`` extra; without them the tests skip.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[dev]')")
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_ruff_finds_nothing_in_the_sources_and_tests():
    done = _run("ruff", "check", "--no-fix", "--output-format", "concise", "src", "tests", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_finds_no_type_errors():
    # files, strictness and the untyped third-party modules all come from [tool.mypy]
    done = _run("mypy", timeout=900)
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout + done.stderr
