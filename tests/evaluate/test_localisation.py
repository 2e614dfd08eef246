"""Pointing game and IoU of raw maps against boxes: per-map scores, box files, the report and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.evaluate.localisation import (
    localisation_report,
    map_iou,
    pointing_hit,
    random_map,
    read_boxes,
    score_maps,
    summarise,
)

runner = CliRunner()
SHAPE = (128, 128)
BOX = [[40.0, 30.0, 80.0, 60.0]]  # x0, y0, x1, y1


def _blob(row: float, col: float, sigma: float = 8.0) -> np.ndarray:
    rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_pointing_hit_and_iou_on_boxes_and_masks():
    on, off = _blob(45, 60), _blob(110, 10)
    assert pointing_hit(on, BOX) and not pointing_hit(off, BOX, tolerance=15)
    assert pointing_hit(_blob(45, 90), BOX, tolerance=15) and not pointing_hit(_blob(45, 90), BOX, tolerance=0)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[30:60, 40:80] = 1
    assert pointing_hit(on, mask=mask) and not pointing_hit(off, mask=mask, tolerance=15)
    assert pointing_hit(_blob(45, 90), mask=mask, tolerance=15) and not pointing_hit(_blob(45, 90), mask=mask, tolerance=0)
    perfect = np.zeros(SHAPE, dtype=np.float32)
    perfect[30:60, 40:80] = 1.0
    assert map_iou(perfect, BOX) == 1.0 and map_iou(perfect, mask=mask) == 1.0
    assert map_iou(off, BOX) == 0.0 and map_iou(np.zeros(SHAPE), BOX) == 0.0
    assert 0.0 < map_iou(on, BOX) < 1.0


def test_random_maps_are_seeded_and_smooth():
    a, b = random_map(SHAPE, np.random.default_rng(1)), random_map(SHAPE, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == SHAPE and 0 <= a.min() and a.max() <= 1
    assert np.abs(np.diff(a, axis=1)).max() < 0.2  # a 7 x 7 lattice upsampled, not pixel noise


def test_read_boxes_plain_and_nih(tmp_path):
    plain = tmp_path / "boxes.csv"
    plain.write_text("image,label,x,y,w,h,width,height\na.png,Mass,10,20,30,40,256,256\n")
    table = read_boxes(plain)
    assert table[["x0", "y0", "x1", "y1"]].iloc[0].tolist() == [10, 20, 40, 60]
    assert table[["grid_h", "grid_w"]].iloc[0].tolist() == [256, 256]
    corners = tmp_path / "corners.csv"
    corners.write_text("image,label,x0,y0,x1,y1\na.png,Mass,1,2,3,4\n")
    assert read_boxes(corners)[["x0", "y0", "x1", "y1"]].iloc[0].tolist() == [1, 2, 3, 4]
    assert read_boxes(corners)["grid_h"].isna().all()
    nih = tmp_path / "BBox_List_2017.csv"
    nih.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\nb.png,Infiltrate,100,200,50,60\n")
    row = read_boxes(nih).iloc[0]  # recognised by its header
    assert (row["image"], row["label"], row["x1"], row["grid_h"]) == ("b.png", "Infiltration", 150, 1024)


def _maps(folder, boxes_on_target: bool):
    folder.mkdir()
    for stem, (row, col) in (("a", (45, 60)), ("b", (45, 60)), ("c", (45, 60))):
        heat = _blob(row, col) if boxes_on_target else _blob(110, 10)
        np.save(folder / f"{stem}.Mass.gradcam.npy", heat)
        np.save(folder / f"{stem}.Mass.cam.npy", _blob(110, 10))
    np.save(folder / "a.Pleural_Thickening.gradcam.npy", _blob(45, 60))


def test_report_scores_every_map_and_counts_missing_ones(tmp_path):
    boxes = tmp_path / "boxes.csv"
    pd.DataFrame({"image": ["dir/a.png", "b.dcm", "c.png", "c.png", "zzz.png"],
                  "label": ["Mass", "Mass", "Mass", "Effusion", "Mass"],
                  "x0": 40, "y0": 30, "x1": 80, "y1": 60}).to_csv(boxes, index=False)
    _maps(tmp_path / "maps", boxes_on_target=True)
    report = localisation_report(boxes, tmp_path / "maps", repeats=10)
    # a, b, c x (gradcam, cam) scored; c's Effusion has no map (missing); zzz.png is not in this run
    assert report.missing == 1 and len(report.items) == 7
    table = report.table.set_index(["method", "label"])
    grad = table.loc[("gradcam", "all")]
    assert (grad["n"], grad["hits"], grad["pointing"]) == (3, 3, 1.0)
    assert grad["pointing_ci_low"] < 1.0 and grad["pointing_ci_high"] == pytest.approx(1.0)
    assert grad["random_pointing"] < 0.6 and grad["iou"] > grad["random_iou"]
    assert table.loc[("cam", "all"), "pointing"] == 0.0
    paths = report.write(tmp_path / "out")
    assert [p.name for p in paths] == ["localisation.csv", "localisation_items.csv"] and all(p.is_file() for p in paths)


def test_boxes_are_rescaled_to_the_map(tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    np.save(folder / "a.Mass.gradcam.npy", _blob(45, 60))
    boxes = pd.DataFrame({"image": ["a.png"], "label": ["Mass"], "x0": [80.0], "y0": [60.0], "x1": [160.0],
                          "y1": [120.0], "grid_h": [256.0], "grid_w": [256.0]})  # BOX, drawn on a 256 px copy
    items = score_maps(boxes, folder, repeats=2)
    assert items["hit"].tolist() == [1.0] and items["iou"].iloc[0] == pytest.approx(map_iou(_blob(45, 60), BOX))


def test_wilson_interval_brackets_the_rate():
    items = pd.DataFrame({"image": list("abcdefghij"), "label": "Mass", "method": "gradcam",
                          "hit": [1.0] * 3 + [0.0] * 7, "iou": 0.1, "random_hit": 0.1, "random_iou": 0.05})
    row = summarise(items).iloc[-1]
    assert row["label"] == "all" and row["pointing"] == pytest.approx(0.3)
    assert row["pointing_ci_low"] == pytest.approx(0.108, abs=1e-3) and row["pointing_ci_high"] == pytest.approx(0.603, abs=1e-3)


def test_cli_localisation(tmp_path):
    from cxrkit.cli.main import app

    boxes = tmp_path / "boxes.csv"
    pd.DataFrame({"image": ["a.png"], "label": ["Mass"], "x0": [40], "y0": [30], "x1": [80], "y1": [60]}).to_csv(boxes, index=False)
    _maps(tmp_path / "maps", boxes_on_target=True)
    result = runner.invoke(app, ["evaluate", "localisation", str(boxes), "--heatmaps", str(tmp_path / "maps"),
                                 "-o", str(tmp_path / "out"), "--format", "json"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "localisation.csv")
    assert set(table["method"]) == {"gradcam", "cam"} and table.loc[table["method"] == "gradcam", "pointing"].eq(1.0).all()
    alone = runner.invoke(app, ["evaluate", "localisation", str(boxes), "-o", str(tmp_path / "o2")])
    assert alone.exit_code != 0


@pytest.mark.slow
def test_heatmap_writer_keeps_raw_maps_for_scoring(tmp_path, example_images):
    """``cxr predict --heatmaps DIR --heatmap-raw`` names each .npy like its PNG, in the film's pixels."""
    from cxrkit.explain import HeatmapWriter
    from cxrkit.io import read_image

    film = example_images[0]
    writer = HeatmapWriter("densenet121.nih-demo", tmp_path / "maps", labels=["Effusion"], raw=True, files=[film])
    [png] = writer(film, {})
    raw = png.with_suffix(".npy")
    heat = np.load(raw)
    assert heat.dtype == np.float32 and heat.shape == read_image(film).pixels.shape
    height, width = heat.shape
    boxes = tmp_path / "boxes.csv"
    pd.DataFrame({"image": [film.name], "label": ["Effusion"], "x0": [0], "y0": [0], "x1": [width],
                  "y1": [height]}).to_csv(boxes, index=False)
    report = localisation_report(boxes, tmp_path / "maps", repeats=2)
    assert report.missing == 0 and report.table.iloc[-1]["pointing"] == 1.0  # the whole film is one box
