"""`cxr datasets duplicates`: exact and near-duplicate films, their splits and patients, and the report."""

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxrkit.cli.main import app
from cxrkit.embed import (
    DEFAULT_THRESHOLD,
    EmbeddingIndex,
    find_duplicates,
    near_pairs,
    pixel_hash,
)
from cxrkit.embed.duplicates import neighbourhood
from cxrkit.embed.duplicates_report import film_labels, split_from_path
from cxrkit.errors import CxrkitError

from .conftest import HELD_OUT

pytest.importorskip("pyarrow")
runner = CliRunner()

def test_near_pairs_are_every_pair_whose_score_reaches_the_threshold_once():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    index = EmbeddingIndex([str(i) for i in range(300)], vectors, transform="none")
    similarity = index.vectors @ index.vectors.T
    np.fill_diagonal(similarity, -np.inf)
    crowd = np.sort(similarity, axis=1)[:, -5:].mean(axis=1)
    assert np.allclose(neighbourhood(index, 5, block=7), crowd, atol=1e-6)
    score = similarity - (crowd[:, None] + crowd[None, :]) / 2
    expected = {(i, j) for i, j in zip(*np.nonzero(score >= 0.1), strict=True) if i < j}
    found = near_pairs(index, 0.1, block=7, min_similarity=-1.0)  # blocks that do not divide the films
    assert {(i, j) for i, j, _, _ in found} == expected and len(found) == len(expected) > 0
    assert all(abs(s - similarity[i, j]) < 1e-5 and abs(z - score[i, j]) < 1e-5 for i, j, s, z in found)


def test_a_hub_is_not_paired_with_everything_near_it():
    """One film close to 20 others (a 'hub'), and one true copy elsewhere: only the copy is flagged."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(200, 32)).astype(np.float32)
    hub = vectors[0]
    vectors[1:21] = hub + rng.normal(size=(20, 32)).astype(np.float32) * 0.6
    vectors[150] = vectors[100] + rng.normal(size=32).astype(np.float32) * 0.05
    index = EmbeddingIndex([str(i) for i in range(200)], vectors, transform="none")
    assert (index.vectors[1:21] @ index.vectors[0] > 0.8).all()  # raw similarity would pair the hub 20 times
    assert [(i, j) for i, j, _, _ in near_pairs(index, 0.3)] == [(100, 150)]
    assert len(near_pairs(index, 0.3, min_similarity=1.0)) == 0


def test_pairs_are_labelled_by_dataset_split_and_group():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(6, 32)).astype(np.float32)
    vectors[3] = vectors[0] + 0.01 * rng.normal(size=32)  # a near copy of film a across datasets
    files = ["one/train/a.png", "one/train/b.png", "one/test/c.png", "two/d.png", "two/e.png", "two/f.png"]
    index = EmbeddingIndex(files, vectors, transform="none")
    hashes = {"one/train/b.png": "h1", "one/test/c.png": "h1", "two/e.png": "h2"}  # b and c: same pixels
    patient = {"one/train/a.png": "7", "two/d.png": "9", "one/train/b.png": "3", "one/test/c.png": "3"}
    report = find_duplicates(index, threshold=0.3, hashes=hashes, dataset_of=lambda f: f.split("/")[0],
                             split_of=split_from_path, group_of=patient.get)
    pairs = report.pairs.set_index(["file_a", "file_b"])
    assert len(pairs) == 2
    exact = pairs.loc[("one/train/b.png", "one/test/c.png")]
    assert exact["kind"] == "exact" and exact["across_splits"] and not exact["across_datasets"] and exact["same_group"]
    near = pairs.loc[("one/train/a.png", "two/d.png")]
    assert near["kind"] == "near" and near["similarity"] > 0.99 and near["across_datasets"]
    assert near["split_b"] is None and near["across_splits"] is None and near["same_group"] is False
    assert report.summary == {"pairs": 2, "exact": 1, "near": 1, "across_datasets": 1, "across_splits": 1,
                              "same_group": 1, "different_group": 1}
    with pytest.raises(CxrkitError, match="threshold"):
        find_duplicates(index, threshold=3.0)


def test_labels_come_from_a_metadata_table_or_the_folders(tmp_path):
    files = ["/data/x/train/00000001_000.png", "/data/x/test/00000002_000.png", "/data/y/00000003_000.png"]
    csv = tmp_path / "meta.csv"
    pd.DataFrame({"Image Index": ["00000001_000.png", "00000003_000.png"], "Patient ID": ["1", "1"],
                  "fold": ["valid", "test"]}).to_csv(csv, index=False)
    split_of, group_of = film_labels(files, csv, split_column="fold", group_by="patient")
    assert [split_of(f) for f in files] == ["valid", "test", "test"]  # the table first, then the folder name
    assert [group_of(f) for f in files] == ["1", None, "1"]
    split_of, group_of = film_labels(files)
    assert [split_of(f) for f in files] == ["train", "test", None] and group_of is None
    with pytest.raises(CxrkitError, match="no group column"):
        film_labels(files, csv, group_by="site")
    with pytest.raises(CxrkitError, match="needs a `metadata` table"):
        film_labels(files, group_by="patient")


def test_pixel_hash_sees_pixels_not_files(tmp_path, example_images):
    image = cv2.imread(str(example_images[0]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "same.tif"), image)
    cv2.imwrite(str(tmp_path / "changed.png"), np.where(image == 0, 1, image).astype(np.uint8))
    assert pixel_hash(str(tmp_path / "same.tif")) == pixel_hash(str(example_images[0]))
    assert pixel_hash(str(tmp_path / "changed.png")) != pixel_hash(str(example_images[0]))


def _plant(source, target, how):
    """A re-hosted copy: re-saved as JPEG q85, or with Gaussian noise (sigma 3 of 255), or downsized to 384 px."""
    image = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    target.parent.mkdir(parents=True, exist_ok=True)
    if how == "jpeg":
        cv2.imwrite(str(target.with_suffix(".jpg")), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return target.with_suffix(".jpg")
    if how == "noisy":
        noise = np.random.default_rng(0).normal(0, 3, image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    else:
        image = cv2.resize(image, (384, 384), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(target), image)
    return target


def test_planted_duplicates_are_found_across_datasets_and_splits(shared_data, held_out_films, tmp_path):
    """16 held-out NIH films in a train/test layout; a second 'dataset' re-hosts 3 of them altered
    (JPEG q85; noise; downsized) and 1 re-saved with the same pixels, plus 2 other films.

    Every planted pair must be found (the exact one as exact), and no pair of the unrelated films
    (all of different patients) may reach the threshold.
    """
    images = shared_data / "nih" / "images"
    first, second = tmp_path / "collection", tmp_path / "rehosted"
    for i, name in enumerate(HELD_OUT[:16]):
        (first / ("train" if i < 12 else "test")).mkdir(parents=True, exist_ok=True)
        shutil.copy(images / name, first / ("train" if i < 12 else "test") / name)
    planted = {"downsized": HELD_OUT[0], "jpeg": HELD_OUT[5], "noisy": HELD_OUT[13]}
    copies = {_plant(images / name, second / f"{how}_{name}", how): name for how, name in planted.items()}
    exact = second / f"same_{HELD_OUT[9]}".replace(".png", ".tif")
    cv2.imwrite(str(exact), cv2.imread(str(images / HELD_OUT[9]), cv2.IMREAD_GRAYSCALE))
    for name in HELD_OUT[16:18]:
        shutil.copy(images / name, second / name)
    nih = pd.read_csv(shared_data / "nih" / "Data_Entry_2017_v2020.csv", dtype=str).set_index("Image Index")["Patient ID"]
    names = [p.name for p in first.rglob("*.png")] + [p.name for p in second.iterdir()]
    origin = {c.name: name for c, name in copies.items()} | {exact.name: HELD_OUT[9]}
    patients = [nih[origin.get(n, n)] for n in names]
    misfiled = copies_name(copies, planted["jpeg"])
    patients[names.index(misfiled)] = "99999"  # the re-hosting collection filed this copy under another patient
    meta = tmp_path / "patients.csv"
    pd.DataFrame({"Image Index": names, "Patient ID": patients}).to_csv(meta, index=False)
    out = tmp_path / "report"
    result = runner.invoke(app, ["datasets", "duplicates", str(first), str(second), "--out", str(out), "--precision", "fp32",
                                 "--metadata", str(meta), "--group-by", "patient", "--format", "json"])
    assert result.exit_code == 0, result.output
    pairs = pd.read_csv(out / "pairs.csv", dtype={"group_a": str, "group_b": str})
    found = {frozenset((a.split("/")[-1], b.split("/")[-1])): row for a, b, row in
             zip(pairs["file_a"], pairs["file_b"], pairs.itertuples(), strict=True)}
    expected = {frozenset((c.name, name)) for c, name in copies.items()} | {frozenset((exact.name, HELD_OUT[9]))}
    assert set(found) == expected, pairs[["file_a", "file_b", "kind", "similarity"]]
    assert found[frozenset((exact.name, HELD_OUT[9]))].kind == "exact"
    assert all(row.score >= DEFAULT_THRESHOLD and row.across_datasets for row in found.values() if row.kind == "near")
    rehosted_test = found[frozenset((copies_name(copies, HELD_OUT[13]), HELD_OUT[13]))]
    assert rehosted_test.split_a == "test" or rehosted_test.split_b == "test"
    assert [found[frozenset((c.name, name))].same_group for c, name in copies.items()] == [True, False, True]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exact"] == 1 and summary["near"] == 3 and summary["films"] == 22 and summary["hashed"] == 22
    assert summary["same_group"] == 3 and summary["different_group"] == 1 and summary["across_splits"] == 0
    assert len(list((out / "thumbnails").glob("pair-*.png"))) == 4
    assert cv2.imread(str(out / pairs["thumbnail"][0])).shape[1] > 400  # two films side by side


def copies_name(copies, original):
    return next(c.name for c, name in copies.items() if name == original)
