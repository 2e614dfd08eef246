"""The documentation site builds with ``mkdocs build --strict``: a broken link, a missing
page in the nav, an API reference to a name that no longer exists or a tutorial that
cannot be rendered fails the build, and so this test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="mkdocs is not installed (the docs extra: pip install -e '.[docs]')")
pytest.importorskip("material", reason="mkdocs-material is not installed (the docs extra)")
pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is not installed (the docs extra)")
pytest.importorskip("jupytext", reason="jupytext is not installed (the docs extra)")

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out


def test_every_page_is_built(site):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("index.html"))
    assert len(pages) >= 36, pages  # home, 3 getting started, 6 tutorials, 13 guides, 2 design, 11 API
    for name in ("predict", "models", "io", "serve", "design"):
        assert f"{name}/index.html" in pages
    assert len([p for p in pages if p.startswith("tutorials/")]) == 6
    assert len([p for p in pages if p.startswith("reference/")]) == 11


def test_api_reference_is_generated_from_the_docstrings(site):
    html = (site / "reference" / "predict" / "index.html").read_text()
    for name in ("Predictor", "run_files", "predict_files", "OutputSpec"):
        assert f'id="cxrkit.predict.{name}"' in html, name
    assert "streaming and resumable" in html  # the package docstring itself
    assert ":class:" not in html and ":func:" not in html  # the Sphinx roles are stripped
    io_html = (site / "reference" / "io" / "index.html").read_text()
    assert 'id="cxrkit.io.read_image"' in io_html


def test_tutorial_pages_show_code_and_its_stored_output(site):
    html = (site / "tutorials" / "01_predict_and_model_card" / "index.html").read_text()
    assert "Tutorial 1" in html and "run_files" in html
    assert "7 rows; 7 ok" in html  # from docs/tutorials/output, written by scripts/run_tutorials.py
    assert (site / "tutorials" / "01_predict_and_model_card.py").is_file()  # the script is downloadable


def test_pictures_are_present_small_and_referenced(site):
    images = sorted((REPO / "docs" / "images").glob("*.png"))
    assert {p.name for p in images} >= {"serve-page.png", "serve-report.png", "gradcam-overlay.png"}
    text = "".join(p.read_text() for p in (REPO / "docs").rglob("*.md")) + \
        "".join(p.read_text() for p in (REPO / "docs" / "tutorials").glob("*.py"))
    for png in images:
        assert png.stat().st_size < 300_000, png.name
        assert re.search(rf"images/{re.escape(png.name)}", text), f"{png.name} is not shown on any page"
        assert (site / "images" / png.name).is_file()
