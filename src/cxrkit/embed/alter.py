"""Mild random alterations of a film: the changes a copy picks up on its way between archives.

A film re-hosted by another collection or exported twice is turned by a degree or two,
cropped a little, re-windowed, re-compressed, resized. A classifier's features move with
these changes, and a weak classifier's move as much as between two patients. Embedding a
few of an archive's own films again after such changes shows *which directions* of the
feature space are nuisance; :class:`~cxrkit.embed.transform.VectorTransform` then shrinks
those directions (learned whitening) so that search and duplicate finding ignore them.

Left-right mirroring is deliberately not among the changes: a mirrored film is a different
picture (situs, the side of a finding), and whether it counts as a copy is the user's call.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import InvalidInput
from ..io import XrayImage, read_image

__all__ = ["alter", "altered_inputs"]


def _rotate(pixels: np.ndarray, degrees: float) -> np.ndarray:
    h, w = pixels.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(pixels, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _crop(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = pixels.shape
    top, bottom, left, right = (rng.uniform(0.0, 0.06, 4) * [h, h, w, w]).round().astype(int)
    return pixels[top:h - bottom or h, left:w - right or w]


def alter(pixels: np.ndarray, maxval: float, rng: np.random.Generator) -> np.ndarray:
    """``pixels`` (2-D, values in ``[0, maxval]``) after 2-4 random mild changes, as float32 in the same range.

    Changes: a turn of up to 4 degrees, a crop of up to 6 % per side, a contrast gain of
    0.85-1.2 about the mean, a gamma of 0.8-1.25, Gaussian noise of 0.5-3 % of the range,
    a blur or a down-and-up resize, and a JPEG round trip at quality 70-95.
    """
    out: np.ndarray = np.asarray(pixels, dtype=np.float32) / max(float(maxval), 1e-6)
    steps = rng.permutation(7)[: rng.integers(2, 5)]
    for step in sorted(steps):
        if step == 0:
            out = _rotate(out, float(rng.uniform(-4, 4)))
        elif step == 1:
            out = _crop(out, rng)
        elif step == 2:
            mean = float(out.mean())
            out = (out - mean) * float(rng.uniform(0.85, 1.2)) + mean
        elif step == 3:
            out = np.clip(out, 0, 1) ** float(rng.uniform(0.8, 1.25))
        elif step == 4:
            out = out + rng.normal(0, rng.uniform(0.005, 0.03), out.shape).astype(np.float32)
        elif step == 5:
            if rng.random() < 0.5:
                out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.5)))
            else:
                h, w = out.shape
                scale = float(rng.uniform(0.4, 0.9))
                small = cv2.resize(out, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
                out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            eight = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
            encoded = cv2.imencode(".jpg", eight, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])[1]
            decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
            assert decoded is not None, "OpenCV decodes the JPEG it has just encoded"
            out = decoded.astype(np.float32) / 255.0
        out = np.clip(out, 0, 1)
    return out * np.float32(maxval)


def altered_inputs(files: Sequence[str], copies: int, seed: int = 0) -> tuple[list[int], list[XrayImage]]:
    """``copies`` altered versions of each readable film: ``(which film each is, the altered images)``."""
    rng = np.random.default_rng(seed)
    owners: list[int] = []
    images: list[XrayImage] = []
    for i, name in enumerate(files):
        try:
            image = read_image(name)
        except (OSError, ValueError):
            continue
        for _ in range(copies):
            owners.append(i)
            images.append(XrayImage(alter(image.pixels, image.maxval, rng), float(image.maxval), dict(image.meta)))
    return owners, images


def learned_transform(files: Sequence[str], vectors: np.ndarray, embedder, *, sample: int = 48, copies: int = 4,
                      seed: int = 0, batch_size: int = 16):
    """A ``learned`` :class:`~cxrkit.embed.transform.VectorTransform` for an index: ``copies`` altered
    versions of up to ``sample`` of its films (a seeded draw) are embedded with ``embedder`` (the
    index's model, layer and film steps) and their moves define the axes to shrink.

    Costs ``sample * copies`` forward passes (192 by default: seconds on a GPU, about a minute
    on a laptop CPU), once per index.
    """
    from .transform import VectorTransform

    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(files), min(sample, len(files)), replace=False))
    owners, images = altered_inputs([str(files[i]) for i in chosen], copies, seed)
    if len(images) < 2:
        raise InvalidInput("too few readable films to learn which feature changes are alterations")
    moved = []
    for start in range(0, len(images), batch_size):
        batch = np.stack([embedder.prepare(image)[0] for image in images[start:start + batch_size]])
        moved.append(embedder.predict_batch(batch))
    originals = np.asarray(vectors)[chosen[np.asarray(owners)]]
    return VectorTransform.fit(vectors, "learned", files=list(files), pairs=(originals, np.concatenate(moved)))
