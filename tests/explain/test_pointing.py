"""Pointing game: hits, misses, skipped labels, and NIH boxes rescaled to the files on disk."""

from __future__ import annotations

import pytest

from cxrkit.explain import pointing_game
from cxrkit.explain.pointing import inside, nih_boxes

from .conftest import SQUARE


def test_pointing_game_counts_hits_misses_and_skips(square_model, image):
    r0, r1, c0, c1 = SQUARE
    on_square = (c0, r0, c1 - c0, r1 - r0)  # x, y, w, h
    elsewhere = (25.0, 50.0, 10.0, 10.0)
    items = [(image, "Mass", on_square), (image, "Mass", elsewhere), (image, "Hernia", on_square)]
    result = pointing_game(square_model, items, "gradcam", tolerance=0)
    assert (result.hits, result.total, result.skipped) == (1, 2, 1)
    assert result.accuracy == 0.5 and result.as_dict()["per_label"] == {"Mass": {"hits": 1, "total": 2}}


def test_tolerance_grows_the_box():
    assert not inside((0, 0), (10, 10, 5, 5), tolerance=0)
    assert inside((0, 0), (10, 10, 5, 5), tolerance=15)


def test_nih_boxes_are_rescaled_to_the_files(shared_data):
    csv = shared_data / "metadata" / "BBox_List_2017.csv.gz"
    folder = shared_data / "nih" / "images"
    if not csv.is_file() or not folder.is_dir():
        pytest.skip("NIH boxes or images not present")
    boxes = list(nih_boxes(csv, folder))
    assert boxes, "no box has its image in the shared folder"
    for path, label, (x, y, w, h) in boxes:
        assert path.is_file() and label != "Infiltrate"  # renamed to the standard "Infiltration"
        assert 0 <= x and 0 <= y and x + w <= 512 + 1 and y + h <= 512 + 1  # 1024 px boxes on 512 px files
