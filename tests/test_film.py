"""The CXR-Age film clean-up: trim, auto-level, shortest side, 8 bit."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.errors import UnusableFilm
from cxrkit.io import XrayImage, read_image
from cxrkit.preprocess import FilmSteps, clean_film, trim_box


def _bordered(rng, shape=(100, 80), box=(10, 90, 5, 70), border=0, maxval=4095):
    film = np.full(shape, border, dtype=np.uint16)
    top, bottom, left, right = box
    film[top:bottom, left:right] = rng.integers(100, maxval, size=(bottom - top, right - left))
    return film


def test_trim_removes_exactly_the_uniform_border_then_levels_to_8_bit():
    rng = np.random.default_rng(0)
    film = _bordered(rng)
    assert trim_box(film) == (10, 90, 5, 70)
    out = clean_film(film, 4095, shortest=None)
    assert out.dtype == np.uint8 and out.shape == (80, 65)
    assert out.min() == 0 and out.max() == 255  # auto-level: darkest -> 0, brightest -> 255
    inside = film[10:90, 5:70].astype(np.float64)
    expected = np.rint((inside - inside.min()) / (inside.max() - inside.min()) * 255)
    np.testing.assert_array_equal(out, expected)
    white = _bordered(rng, border=4095)  # a white border is trimmed the same way
    assert trim_box(white) == (10, 90, 5, 70)


def test_fuzz_trims_a_noisy_border_and_zero_fuzz_does_not():
    rng = np.random.default_rng(1)
    film = _bordered(rng, border=30).astype(np.int32)
    film[:10] += rng.integers(-2, 3, size=film[:10].shape)  # scanner noise in the top border
    film = film.astype(np.uint16)
    assert trim_box(film, fuzz=0.0)[0] < 10
    assert trim_box(film, fuzz=0.001, maxval=4095) == (10, 90, 5, 70)


def test_shortest_side_is_resized_keeping_the_aspect_ratio():
    rng = np.random.default_rng(2)
    film = rng.integers(0, 255, size=(300, 200)).astype(np.uint8)
    assert clean_film(film, 255, shortest=512, trim=False).shape == (768, 512)
    assert clean_film(film, 255, shortest=100, trim=False).shape == (150, 100)


def test_blank_film_is_a_clear_error():
    with pytest.raises(UnusableFilm, match="blank"):
        clean_film(np.full((50, 60), 7, dtype=np.uint8), 255)


def test_film_steps_clean_then_report_white_level(example_images):
    image = read_image(example_images[0])
    pixels, maxval, info = FilmSteps(clean=True, shortest=256).prepare(image)
    assert pixels.dtype == np.uint8 and min(pixels.shape) == 256 and maxval == 255.0 and info == {}
    untouched = FilmSteps().prepare(XrayImage(image.pixels, image.maxval, image.meta))
    assert untouched[0] is image.pixels and untouched[1] == image.maxval
