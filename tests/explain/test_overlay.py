"""Overlays and contact sheets: right size, plain radiograph where the map is empty, readable PNGs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cxrkit.explain import ExplainError, contact_sheet, explain, render_overlay, save_overlay


def test_overlay_keeps_geometry_and_leaves_margins_plain(square_model, image, tmp_path):
    heat = explain(square_model, image, "Mass", "gradcam")
    out = render_overlay(image, 255.0, heat, alpha=0.6)
    assert out.dtype == np.uint8 and out.shape[1] == image.shape[1] and out.shape[0] > image.shape[0]  # + caption strip
    # the cropped-away margin has no map: pixels equal the grey radiograph
    assert np.array_equal(out[: image.shape[0], :20, 0], image[:, :20])
    r0, r1, c0, c1 = 12, 32, 66, 86
    assert not np.array_equal(out[r0:r1, c0:c1, 0], out[r0:r1, c0:c1, 2])  # coloured where the square is
    path = save_overlay(image, heat, tmp_path / "sub" / "o.png")
    assert cv2.imread(str(path)).shape == out.shape
    with pytest.raises(ExplainError, match="computed from"):
        render_overlay(image[:40], 255.0, heat)


def test_contact_sheet_puts_maps_side_by_side(square_model, image):
    maps = [explain(square_model, image, label, method) for label in ("Mass", "Nodule") for method in ("cam", "gradcam")]
    maps.append(explain(square_model, image, "Mass", "lime", samples=100, kernel_size=2))
    sheet = contact_sheet(image, maps, height=100)
    tile_w = round(120 * 100 / 80)
    assert sheet.shape[1] == 6 * tile_w + 5 * 6  # the image + 5 maps, 6 px gaps
    wrapped = contact_sheet(image, maps, height=100, columns=3)
    assert wrapped.shape[1] == 3 * tile_w + 2 * 6 and wrapped.shape[0] > sheet.shape[0]


def test_empty_map_is_reported_not_pointed_at():
    """An all-zero Grad-CAM is a real answer; it has no peak to point at and says so."""
    import numpy as np

    from cxrkit.explain.heatmap import Heatmap

    empty = Heatmap(array=np.zeros((8, 8), np.float32), label="Mass", method="gradcam", score=0.4)
    assert not empty.has_evidence
    spot = np.zeros((8, 8), np.float32)
    spot[2, 5] = 0.7
    full = Heatmap(array=spot, label="Mass", method="gradcam", score=0.4)
    assert full.has_evidence and full.peak() == (2, 5)
