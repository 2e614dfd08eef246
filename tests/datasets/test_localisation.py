"""Boxes and masks on samples: declared per source, rescaled to the stored image, moved with it."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from cxrkit.datasets import get_dataset, get_spec
from cxrkit.datasets.harmonise import label_order
from cxrkit.datasets.localisation import Localisation, rle_decode
from cxrkit.labels import PATHOLOGIES
from cxrkit.preprocess.geometry import boxes_to_mask, iou

GRID = 1024


def _rle_encode(mask: np.ndarray) -> str:
    """SIIM's relative, column-major run-length string of a mask (the inverse of rle_decode)."""
    flat = np.concatenate([[0], mask.T.reshape(-1), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[0::2], edges[1::2]
    out, position = [], 0
    for start, end in zip(starts, ends, strict=True):
        out += [start - position, end - start]
        position = end
    return " ".join(map(str, out)) if out else "-1"


def _bright_box(image: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(image[0] > 0)
    return np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], dtype=np.float32)


@pytest.fixture()
def nih_like(tmp_path):
    """One 300 x 400 film with a bright rectangle, its NIH label row, and its box in the 1,024 px grid."""
    height, width = 300, 400
    x0, y0, x1, y1 = 220, 90, 300, 150  # in the stored film
    film = np.zeros((height, width), dtype=np.uint8)
    film[y0:y1, x0:x1] = 255
    cv2.imwrite(str(tmp_path / "a.png"), film)
    cv2.imwrite(str(tmp_path / "b.png"), film // 2)
    pd.DataFrame({"Image Index": ["a.png", "b.png"], "Finding Labels": ["Infiltration", "No Finding"],
                  "Patient ID": [1, 2], "Patient Age": [50, 60], "Patient Gender": ["M", "F"],
                  "View Position": ["PA", "PA"]}).to_csv(tmp_path / "labels.csv", index=False)
    sx, sy = GRID / width, GRID / height
    (tmp_path / "bbox.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        f"a.png,Infiltrate,{x0 * sx},{y0 * sy},{(x1 - x0) * sx},{(y1 - y0) * sy}\n")
    return tmp_path


@pytest.mark.parametrize("size", [None, 64])
def test_nih_boxes_follow_the_stored_film_and_the_crop(nih_like, size):
    ds = get_dataset("nih", nih_like, nih_like / "labels.csv", files={"bbox": nih_like / "bbox.csv"}, size=size)
    sample = ds[0]
    assert sample["box_labels"] == ("Infiltration",)  # NIH's "Infiltrate", harmonised
    shape = sample["image"].shape[-2:]
    assert shape == ((300, 400) if size is None else (64, 64))
    assert iou(boxes_to_mask(sample["boxes"], shape), boxes_to_mask(_bright_box(sample["image"]), shape)) >= 0.9
    other = ds[1]
    assert other["boxes"].shape == (0, 4) and other["box_labels"] == ()


@pytest.mark.parametrize("size", [None, 64])
def test_boxes_leave_the_image_as_it_is_without_them(nih_like, size):
    """Annotations move with the film; the film itself is the same image, pixel for pixel."""
    labels = nih_like / "labels.csv"
    boxed = get_dataset("nih", nih_like, labels, files={"bbox": nih_like / "bbox.csv"}, size=size)
    plain = get_dataset("nih", nih_like, labels, size=size)
    for index in range(len(plain)):
        np.testing.assert_array_equal(boxed[index]["image"], plain[index]["image"])


def test_no_box_file_no_box_keys(nih_like):
    sample = get_dataset("nih", nih_like, nih_like / "labels.csv")[0]
    assert "boxes" not in sample and sample["image"].shape == (1, 300, 400)


@pytest.mark.parametrize("size", [None, 96])
def test_siim_masks_decode_and_follow_the_film(tmp_path, size):
    mask = np.zeros((GRID, GRID), dtype=np.uint8)
    mask[100:400, 600:700] = 1  # tall and thin, like a pneumothorax along the chest wall
    second = np.zeros_like(mask)
    second[500:520, 50:90] = 1
    stored = cv2.resize(np.maximum(mask, second) * 255, (512, 512), interpolation=cv2.INTER_NEAREST)
    for name, film in (("img1.dcm", stored), ("img2.dcm", stored // 2)):  # PNG bytes: read by content
        (tmp_path / name).write_bytes(cv2.imencode(".png", film)[1].tobytes())
    pd.DataFrame({"ImageId": ["img1", "img1", "img2"],
                  " EncodedPixels": [_rle_encode(mask), _rle_encode(second), "-1"]}).to_csv(tmp_path / "rle.csv", index=False)
    ds = get_dataset("siim", tmp_path, tmp_path / "rle.csv", size=size)
    sample = ds[0]
    assert sample["mask"].dtype == np.uint8 and sample["mask"].shape == sample["image"].shape[-2:]
    assert iou(sample["mask"], sample["image"][0] > 0) >= 0.95
    assert ds[1]["mask"].sum() == 0  # "-1": a negative image has an empty mask


def test_rle_decode_is_relative_and_column_major():
    # 3 rows x 2 columns; pixels numbered down column 0 (0, 1, 2), then column 1 (3, 4, 5)
    mask = rle_decode("1 2 1 1", height=3, width=2)  # pixels 1-2, then 1 past the run's end: pixel 4
    np.testing.assert_array_equal(mask, [[0, 0], [1, 1], [1, 0]])
    with pytest.raises(ValueError, match="pairs"):
        rle_decode("1 2 3", 3, 2)
    with pytest.raises(ValueError, match="runs past"):
        rle_decode("5 4", 3, 2)


def test_localisation_declarations_are_checked():
    with pytest.raises(ValueError, match="either boxes"):
        Localisation(image="id", constant_label="x")
    with pytest.raises(ValueError, match="grid"):
        Localisation(image="id", constant_label="x", rle="r")
    with pytest.raises(ValueError, match="label column"):
        Localisation(image="id", boxes=("a", "b", "c", "d"))


def test_shared_nih_images_with_boxes(nih_subset, metadata):
    """Every box of a shared NIH image lies inside the stored 512 px film, labelled in the vocabulary."""
    folder, labels = nih_subset
    if not metadata["bbox"].is_file() or not folder.is_dir():
        pytest.skip("NIH boxes or images not present")
    ds = get_dataset("nih", folder, labels, files={"bbox": metadata["bbox"]})
    boxed = [i for i in range(len(ds)) if ds.localisation.key(ds.frame.iloc[i]) in ds.localisation]
    n_boxes = 0
    for i in boxed:
        sample = ds[i]
        height, width = sample["image"].shape[-2:]
        b = sample["boxes"]
        assert len(b) and len(b) == len(sample["box_labels"])
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= width).all() and (b[:, 3] <= height).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert set(sample["box_labels"]) <= set(PATHOLOGIES)
        n_boxes += len(b)
    print(f"shared NIH images with boxes: {len(boxed)} images, {n_boxes} boxes")
    assert (len(boxed), n_boxes) == (48, 53)


def test_real_annotation_files(metadata):
    """RSNA boxes, SIIM masks and VinDr boxes read through their declarations, labels harmonised."""
    for name, key, images, rows in (("rsna", "rsna", 6012, 2 * 9555), ("siim", "siim", 2669, 3576),
                                           ("vindr", "vindr", 4394, 36096)):
        if not metadata[key].is_file():
            pytest.skip(f"{metadata[key].name} not present")
        ds = get_dataset(name, None, metadata[key])
        assert (len(ds.localisation.keys()), ds.localisation.count) == (images, rows)
        first = ds.localisation.targets(ds.localisation.keys()[0], (GRID, GRID))
        if name == "siim":
            continue
        assert set(first["box_labels"]) <= set(label_order(get_spec(name).table))
    # SIIM pneumothoraces sit mostly at the apex: only a column-major decoding puts them in the upper half
    siim = get_dataset("siim", None, metadata["siim"]).localisation
    rows = [np.nonzero(siim.targets(k, (GRID, GRID))["mask"])[0].mean() for k in siim.keys()[:200]]
    assert np.mean(np.asarray(rows) < GRID / 2) > 0.75
