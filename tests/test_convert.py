"""`cxr convert`: folder to folder, one manifest row per file, resumable, orientation fixing."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.convert import output_paths
from cxrkit.io import read_image
from cxrkit.preprocess import apply_orientation, clean_film

runner = CliRunner()


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def films(tmp_path, example_images):
    """Example films in a nested layout, the example DICOM, and two broken files."""
    root = tmp_path / "in"
    (root / "batch1").mkdir(parents=True)
    (root / "batch2" / "deep").mkdir(parents=True)
    for i, path in enumerate(example_images):
        shutil.copy(path, root / ("batch1" if i % 2 else "batch2/deep") / path.name)
    shutil.copy(example_images[0].parent / "siim_chest_pa.dcm", root / "batch1" / "study.dcm")
    (root / "batch1" / "truncated.png").write_bytes(example_images[0].read_bytes()[:300])
    (root / "batch2" / "empty.dcm").write_bytes(b"")
    return root


def test_convert_mirrors_the_layout_and_gives_one_row_per_file(films, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(films), "-o", str(out)])
    assert result.exit_code == 3, result.output  # two files failed
    rows = _rows(out / "convert.csv")
    assert list(rows[0]) == ["file", "status", "error", "output", "height", "width"]
    inputs = sorted(str(p) for p in films.rglob("*") if p.is_file())
    assert sorted(r["file"] for r in rows) == inputs
    failed = {Path(r["file"]).name: r["error"] for r in rows if r["status"] == "error"}
    assert set(failed) == {"truncated.png", "empty.dcm"} and all(failed.values())
    for row in rows:
        if row["status"] != "ok":
            assert row["output"] == ""
            continue
        png = Path(row["output"])
        relative = Path(row["file"]).relative_to(films).with_suffix(".png")
        assert png == out / relative
        pixels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert pixels.dtype == np.uint8 and pixels.ndim == 2 and min(pixels.shape) == 512
        assert pixels.shape == (int(row["height"]), int(row["width"]))
        source = read_image(row["file"])
        np.testing.assert_array_equal(pixels, clean_film(source.pixels, source.maxval))  # the library's clean-up
    assert not list(out.rglob("*.part"))


def test_no_clean_keeps_an_8_bit_film_exactly(example_images, tmp_path):
    result = runner.invoke(app, ["convert", str(example_images[0]), "-o", str(tmp_path / "o"), "--no-clean",
                                 "--size", "0"])
    assert result.exit_code == 0, result.output
    converted = cv2.imread(str(tmp_path / "o" / example_images[0].name), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(converted, read_image(example_images[0]).pixels)


def test_resume_converts_only_what_is_missing(films, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["convert", str(films), "-o", str(out)]).exit_code == 3
    manifest = out / "convert.csv"
    full = _rows(manifest)
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text("".join(lines[:-3]) + lines[-3][:12])  # two rows lost, one half-written (a kill)
    again = runner.invoke(app, ["convert", str(films), "-o", str(out)])
    assert again.exit_code == 1 and "--resume" in again.output  # never silently overwritten
    result = runner.invoke(app, ["convert", str(films), "-o", str(out), "--resume"])
    assert "already done" in result.output
    resumed = _rows(manifest)
    assert sorted(r["file"] for r in resumed) == sorted(r["file"] for r in full)  # nothing lost or doubled
    assert f"{len(full) - 3} already done" in result.output


def test_output_names_never_collide(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    files = [a / "x.dcm", a / "x.png", b / "x.png", tmp_path / "loose" / "x"]
    targets = output_paths(files, [a, b, files[-1]], tmp_path / "out")
    assert [t.name for t in targets.values()] == ["x.png", "x__2.png", "x__3.png", "x__4.png"]


def test_fix_orientation_writes_the_upright_film(always_rot90, example_images, tmp_path):
    film = read_image(example_images[2]).pixels
    turned = tmp_path / "in" / "turned.png"
    turned.parent.mkdir()
    Image.fromarray(apply_orientation(film, 1)).save(turned)
    out = tmp_path / "out"
    args = ["--no-clean", "--size", "0", "--fix-orientation", "--orientation-model", str(always_rot90)]
    result = runner.invoke(app, ["convert", str(turned.parent), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    row = _rows(out / "convert.csv")[0]
    assert (row["orientation"], row["orientation_fixed"]) == ("rot90", "yes") and float(row["orientation_p"]) > 0.99
    np.testing.assert_array_equal(cv2.imread(str(out / "turned.png"), cv2.IMREAD_UNCHANGED), film)


def test_real_dicoms_convert_with_one_clear_error(shared_data, tmp_path):
    folder = shared_data / "dicom"
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(folder), "-o", str(out), "--workers", "2"])
    rows = _rows(out / "convert.csv")
    assert len(rows) == len(list(folder.glob("*.dcm")))
    failed = [Path(r["file"]).name for r in rows if r["status"] == "error"]
    assert failed == ["966.dcm"] and result.exit_code == 3
    assert "Traceback" not in result.output
    for row in rows:
        if row["status"] == "ok":
            assert min(int(row["height"]), int(row["width"])) == 512


def test_output_inside_the_inputs_is_refused_once_it_holds_images(example_images, tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    shutil.copy(example_images[0], films / example_images[0].name)
    inside = films / "png"
    assert runner.invoke(app, ["convert", str(films), "-o", str(inside)]).exit_code == 0
    again = runner.invoke(app, ["convert", str(films), "-o", str(inside), "--resume"])
    assert again.exit_code == 1 and "outside the inputs" in again.output  # its own PNGs would become inputs
