"""PNG / JPEG / TIFF / BMP reading: exact values, real bit depth, clear errors, no stderr noise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrkit.errors import UnreadableImage, UnsupportedImage
from cxrkit.io import META_KEYS, XrayImage, read_image

RNG = np.random.default_rng(7)
GRAY8 = RNG.integers(0, 256, (48, 64), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (48, 64), dtype=np.uint16)


def _save(path: Path, arr: np.ndarray, fmt: str, **kw) -> Path:
    Image.fromarray(arr).save(path, fmt, **kw)
    return path


def test_png_8bit_exact(tmp_path):
    img = read_image(_save(tmp_path / "a.png", GRAY8, "PNG"))
    assert isinstance(img, XrayImage)
    assert img.pixels.dtype == np.uint8 and img.maxval == 255
    np.testing.assert_array_equal(img.pixels, GRAY8)
    assert set(META_KEYS) <= set(img.meta)
    assert img.meta["format"] == "png" and img.meta["bit_depth"] == 8
    assert (img.meta["height"], img.meta["width"]) == (48, 64)
    assert img.meta["photometric"] == "gray" and img.meta["window_source"] is None


def test_rgba_drops_alpha_and_uses_bt601_luma(tmp_path):
    rgba = RNG.integers(0, 256, (16, 20, 4), dtype=np.uint8)
    rgba[..., 3] = RNG.integers(0, 256, (16, 20))  # alpha must not matter
    img = read_image(_save(tmp_path / "rgba.png", rgba, "PNG"))
    r, g, b = (rgba[..., i].astype(np.float64) for i in range(3))
    expected = np.rint(0.299 * r + 0.587 * g + 0.114 * b)
    assert img.pixels.dtype == np.uint8 and img.maxval == 255
    assert np.abs(img.pixels.astype(np.float64) - expected).max() <= 1  # float32 vs float64 rounding
    assert np.mean(img.pixels == expected) > 0.99
    assert img.meta["photometric"] == "rgba"


def test_gray_alpha_png(tmp_path):
    la = Image.fromarray(GRAY8).convert("LA")
    la.putalpha(Image.fromarray(RNG.integers(0, 256, GRAY8.shape, dtype=np.uint8)))
    la.save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(img.pixels, GRAY8)
    assert img.meta["photometric"] == "gray+alpha"


def test_jpeg_8bit_matches_pillow(tmp_path):
    path = _save(tmp_path / "a.jpg", GRAY8, "JPEG", quality=95)
    img = read_image(path)
    assert img.pixels.dtype == np.uint8 and img.maxval == 255 and img.meta["format"] == "jpeg"
    ref = np.asarray(Image.open(path)).astype(int)
    assert np.abs(img.pixels.astype(int) - ref).max() <= 2  # libjpeg-turbo IDCT variants


def test_tiff_16bit_exact(tmp_path):
    img = read_image(_save(tmp_path / "a.tif", GRAY16, "TIFF"))
    assert img.pixels.dtype == np.uint16 and img.maxval == 65535 and img.meta["format"] == "tiff"
    np.testing.assert_array_equal(img.pixels, GRAY16)


def test_bmp(tmp_path):
    img = read_image(_save(tmp_path / "a.bmp", GRAY8, "BMP"))
    np.testing.assert_array_equal(img.pixels, GRAY8)


def test_format_by_content_not_name(tmp_path):
    path = _save(tmp_path / "really_a_png.dat", GRAY8, "PNG")
    img = read_image(path)
    assert img.meta["format"] == "png"
    np.testing.assert_array_equal(img.pixels, GRAY8)


def test_multipage_tiff_refused(tmp_path):
    path = tmp_path / "stack.tif"
    frames = [Image.fromarray(GRAY8), Image.fromarray(255 - GRAY8)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(UnsupportedImage, match="multi-page TIFF with 2"):
        read_image(path)


def test_pixel_limit_env_var(tmp_path, monkeypatch):
    path = _save(tmp_path / "a.png", GRAY8, "PNG")
    monkeypatch.setenv("CXRKIT_MAX_PIXELS", "1000")
    with pytest.raises(UnsupportedImage, match="64x48"):
        read_image(path)
    monkeypatch.setenv("CXRKIT_MAX_PIXELS", "4000")
    assert read_image(path).pixels.shape == (48, 64)


@pytest.mark.parametrize("fmt,suffix", [("PNG", "png"), ("JPEG", "jpg"), ("TIFF", "tif"), ("BMP", "bmp")])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_files_fail_clearly_and_quietly(tmp_path, capfd, fmt, suffix, keep):
    full = io.BytesIO()
    Image.fromarray(GRAY16 if fmt == "TIFF" else GRAY8).save(full, fmt)
    data = full.getvalue()
    path = tmp_path / f"cut.{suffix}"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UnreadableImage) as exc:
        read_image(path)
    assert "truncated" in exc.value.reason
    assert exc.value.path == str(path)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no libpng / libjpeg / libtiff chatter


def test_png_with_bad_crc(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(GRAY8).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[60] ^= 0xFF  # inside the IDAT payload
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableImage, match="CRC"):
        read_image(path)


@pytest.mark.parametrize("name", ["notes.png", "notes.dcm", "notes"])
def test_text_file_with_image_name(tmp_path, name):
    path = tmp_path / name
    path.write_text("patient list\nnot an image at all\n" * 10)
    with pytest.raises(UnreadableImage) as exc:
        read_image(path)
    assert "text" in exc.value.reason and not isinstance(exc.value, UnsupportedImage)


def test_other_known_format_is_unsupported(tmp_path):
    path = tmp_path / "anim.gif"
    Image.fromarray(GRAY8).save(path, "GIF")
    with pytest.raises(UnsupportedImage, match="GIF"):
        read_image(path)
