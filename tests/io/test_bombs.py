"""Decompression and decode-time bombs: each is refused with its exact typed error, quickly and
within the memory budget, and the legitimate file of the same kind still reads.

The small bombs live in ``tests/fixtures/bad`` (see ``test_bad_corpus.py``); the large ones are
generated here by ``bombs.py`` (a gigabyte of zeros deflates in milliseconds). Memory is
checked with ``tracemalloc`` (Python-level allocations: the inflated buffer, pydicom's copies),
time with a generous wall-clock margin for two busy cores.
"""

from __future__ import annotations

import os
import re
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bombs
import fuzzlib

from cxrkit.errors import UnreadableImage, UnsupportedImage
from cxrkit.io import read_image
from cxrkit.io._image import DEFAULT_MAX_PIXELS, max_file_bytes, max_pixels

EXAMPLES = sorted(fuzzlib.EXAMPLES.glob("*.png"))


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv("CXRKIT_MAX_PIXELS", raising=False)
    read_image(fuzzlib.SEED_DIR / "dcm_deflated.dcm")  # imports done outside the timed, traced reads


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path: Path, kind: type, pattern: str, seconds: float = 5.0, peak_mb: float | None = None):
    """Read ``path``, expecting exactly ``kind`` whose reason matches ``pattern``; time and memory bounded."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(kind) as info:
            read_image(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert type(info.value) is kind
    assert re.search(pattern, info.value.reason), info.value.reason
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    if peak_mb is not None:
        assert peak / 1e6 < peak_mb, f"peak {peak / 1e6:.0f} MB"
    return info.value


# --- the default limit -------------------------------------------------------------------------

def test_default_pixel_limit_fits_radiographs_and_refuses_more(tmp_path):
    """50 MP: a 4300 x 4300 detector (18.5 MP) and a 7000 x 7000 PNG read; 7100 x 7100 is refused
    from its header. The override still raises or lowers it."""
    assert max_pixels() == DEFAULT_MAX_PIXELS == 50_000_000
    image = read_image(_write(tmp_path, "ok.png", bombs.huge_png(7000, 7000)))
    assert image.shape == (7000, 7000) and image.pixels.max() == 0
    _refused(_write(tmp_path, "big.png", bombs.huge_png(7100, 7100)), UnsupportedImage,
             r"7100x7100 = 50\.4 megapixels, over the limit of 50\.0 megapixels.*CXRKIT_MAX_PIXELS")


def test_valid_289_megapixel_png_is_refused_from_its_header(tmp_path):
    """A valid 280 KB PNG of 17000 x 17000 zeros (5.2 GB peak in `cxr predict` under the old limit)."""
    data = bombs.huge_png(17000, 17000)
    assert len(data) < 400_000
    _refused(_write(tmp_path, "bomb.png", data), UnsupportedImage, r"17000x17000 = 289\.0 megapixels",
             seconds=2, peak_mb=5)


def test_file_larger_than_any_image_within_the_limit_is_not_read(tmp_path, monkeypatch):
    """A sparse 40 MB file is refused from its size before a byte of it is read into memory."""
    monkeypatch.setenv("CXRKIT_MAX_PIXELS", "1000")
    for name, head in (("big.dcm", bytes(128) + b"DICM"), ("big.png", b"\x89PNG\r\n\x1a\n")):
        path = tmp_path / name
        with open(path, "wb") as fh:
            fh.write(head)
            fh.truncate(40 << 20)
        per_pixel = 4 if name.endswith(".dcm") else 8
        assert max_file_bytes(per_pixel) == per_pixel * 1000 + (16 << 20)
        _refused(path, UnsupportedImage, r"file of 41\.9 MB is larger than any image within the limit of "
                 r"0\.0 megapixels", seconds=2, peak_mb=5)


# --- deflated DICOM ------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [0, 1 << 20])
def test_legitimate_deflated_dicom_reads_like_its_uncompressed_twin(tmp_path, extra):
    """Bounded inflation changes nothing for a real deflated file, private data included."""
    deflated = read_image(_write(tmp_path, "d.dcm", bombs.deflated_dicom(extra_zeros=extra)))
    plain = read_image(_write(tmp_path, "p.dcm", fuzzlib._dicom("1.2.840.10008.1.2.1", bombs._pixels(),
                                                                 bits_stored=12)))
    np.testing.assert_array_equal(deflated.pixels, plain.pixels)
    assert deflated.maxval == plain.maxval == 4095
    assert deflated.meta["transfer_syntax"] == "1.2.840.10008.1.2.1.99"
    assert {k: v for k, v in deflated.meta.items() if k not in ("source", "transfer_syntax")} == \
        {k: v for k, v in plain.meta.items() if k not in ("source", "transfer_syntax")}


def test_deflate_bomb_stops_inflating_at_the_bound(tmp_path, monkeypatch):
    """1 MP limit: the bound is 4 MB + 16 MiB; a 200 MB inflation stops there (pydicom alone would
    inflate all of it inside dcmread, before any check). zlib grows its output buffer by
    doubling, so the peak is at most twice the bound."""
    monkeypatch.setenv("CXRKIT_MAX_PIXELS", "1000000")
    bound = max_file_bytes(4)
    path = _write(tmp_path, "bomb.dcm", bombs.deflated_dicom(extra_zeros=200_000_000))
    assert path.stat().st_size < 250_000
    _refused(path, UnsupportedImage, rf"deflated DICOM dataset inflates to more than {bound / 1e6:.1f} MB.*"
             r"decompression bomb", seconds=5, peak_mb=2 * bound / 1e6 + 5)


def test_deflate_bomb_at_the_default_limit(tmp_path):
    """300 MB of zeros in 300 KB: refused at 216.8 MB, the bound of the default 50 MP limit."""
    path = _write(tmp_path, "bomb.dcm", bombs.deflated_dicom(extra_zeros=300_000_000))
    _refused(path, UnsupportedImage, r"inflates to more than 216\.8 MB", seconds=8, peak_mb=2 * 216.8 + 5)


def test_corrupt_or_truncated_deflate_stream_is_unreadable(tmp_path):
    data = bombs.deflated_dicom()
    _refused(_write(tmp_path, "cut.dcm", data[:-40]), UnreadableImage,
             r"not a readable DICOM file: truncated deflated dataset \(the stream has no end\)")
    from cxrkit.io._dicom_deflate import _meta_end

    end = _meta_end(data, 132)
    bad = data[:end + 10] + b"\xff" * 20 + data[end + 30:]
    _refused(_write(tmp_path, "bad.dcm", bad), UnreadableImage,
             r"not a readable DICOM file: corrupt deflated dataset \(Error -3 while decompressing data")


# --- codestream frame headers --------------------------------------------------------------------

@pytest.mark.parametrize("kind,name", [("jpegls", "JPEG-LS"), ("jpeg_lossless", "JPEG Lossless"),
                                       ("jpeg_baseline", "JPEG Baseline"), ("jpeg_extended", "JPEG Extended"),
                                       ("j2k", "JPEG 2000")])
@pytest.mark.parametrize("width,height", [(25, 16), (24, 17), (60000, 60000)])
def test_codestream_larger_than_rows_and_columns_is_refused_before_decoding(tmp_path, kind, name, width, height):
    """One column or row more than the header says is already refused: decoders allocate the codestream's size."""
    path = _write(tmp_path, "cs.dcm", bombs.oversize_codestream_dicom(kind, width, height))
    _refused(path, UnreadableImage, rf"corrupt {name}.*the codestream declares a {width}x{height} image but the "
             r"header a 24x16 one \(Columns x Rows\); refused before decoding", seconds=2, peak_mb=5)


def test_codestream_matching_the_header_still_reads(tmp_path):
    for kind in ("jpegls", "jpeg_lossless", "jpeg_baseline", "jpeg_extended", "j2k"):
        image = read_image(_write(tmp_path, f"{kind}.dcm", bombs.oversize_codestream_dicom(kind, 24, 16)))
        assert image.shape == (16, 24) and image.pixels.max() > 0


@pytest.mark.parametrize("seed,how,pattern", [
    ("dcm_jpeg_baseline.dcm", "components3", r"codestream has 3 components but the header says one sample"),
    ("dcm_j2k_lossless.dcm", "components3", r"codestream has 3 components"),
    ("dcm_jpegls.dcm", "height0", r"declares a 24x0 image"),
])
def test_codestream_components_and_zero_height(tmp_path, seed, how, pattern):
    data = fuzzlib.apply((seed, (("dcm.codestream", how),)), fuzzlib.load_seeds())
    _refused(_write(tmp_path, "cs.dcm", data), UnreadableImage, pattern, seconds=2)


@pytest.mark.parametrize("kind,name,need", [("jpeg_lossless", "JPEG Lossless", 6125000),
                                             ("jpeg_baseline", "JPEG Baseline", 191406),
                                             ("jpeg_extended", "JPEG Extended", 191406)])
def test_huffman_frame_too_short_for_its_size_is_refused_before_decoding(tmp_path, kind, name, need):
    """A 1 KB frame for 7000 x 7000: lossless JPEG needs a bit per pixel, DCT two per block.
    pylibjpeg turned such junk into a full "image" in 23 s (lossless) and 14 s (baseline)."""
    path = _write(tmp_path, "junk.dcm", bombs.consistent_junk_dicom(kind))
    _refused(path, UnreadableImage, rf"truncated or corrupt {name}.* pixel data: \d+ bytes cannot hold a 7000x7000 "
             rf"image \(at least {need} needed\); refused before decoding", seconds=3)


def test_invalid_jpegls_stream_is_not_handed_to_the_slow_fallback(tmp_path):
    """CharLS rejects a 1 KB JPEG-LS frame for 7000 x 7000 at once; pylibjpeg took 79 s to decode it into noise."""
    path = _write(tmp_path, "junk.dcm", bombs.consistent_junk_dicom("jpegls"))
    _refused(path, UnreadableImage, r"corrupt JPEG-LS .*pixel data: charls.*Invalid JPEG-LS stream", seconds=3)


def test_rle_segment_bomb_refused_and_valid_rle_reads(tmp_path):
    """400 KB of runs decode to 25.6 MB for a 384-pixel plane; the valid seed still reads."""
    _refused(_write(tmp_path, "rle.dcm", bombs.rle_bomb_dicom()), UnreadableImage,
             r"RLE Lossless pixel data: a segment decodes to more than 1792 bytes for a 24x16 image",
             seconds=2, peak_mb=5)
    image = read_image(fuzzlib.SEED_DIR / "dcm_rle.dcm")
    assert image.shape == (16, 24) and image.pixels.max() > 0


# --- decode time: scans ---------------------------------------------------------------------------

def test_progressive_cpu_bomb_is_refused_from_its_scan_count(tmp_path):
    """10,000 near-empty scans over 8000 x 6000 (~0.9 MB; minutes inside libjpeg) are counted, not
    decoded; so are 21 scans over 7000 x 7000 (1.03 billion scan-pixels, ~7 s of libjpeg)."""
    path = _write(tmp_path, "prog.jpg", bombs.progressive_jpeg(8000, 6000, 10_000))
    _refused(path, UnsupportedImage, r"JPEG in 10000 scans over 48\.0 megapixels, over the limit of 100 scans and "
             r"1 billion scan-pixels: every scan walks the whole image again", seconds=2)
    path = _write(tmp_path, "prog21.jpg", bombs.progressive_jpeg(7000, 7000, 21))
    _refused(path, UnsupportedImage, r"JPEG in 21 scans over 49\.0 megapixels", seconds=2)


def test_scan_limit_applies_to_jpeg_inside_dicom(tmp_path):
    frame = bombs.progressive_jpeg(24, 16, 150)
    data = fuzzlib._dicom("1.2.840.10008.1.2.4.50", bombs._pixels(top=255), frame=frame)
    _refused(_write(tmp_path, "prog.dcm", data), UnsupportedImage, r"JPEG Baseline.* in 150 scans over 0\.0 megapixels, over the limit of 100 scans")


def test_an_ordinary_progressive_jpeg_reads_like_its_baseline_twin(tmp_path):
    import cv2

    img = cv2.imread(str(EXAMPLES[0]), cv2.IMREAD_GRAYSCALE)
    for name, flags in (("p.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), ("b.jpg", [])):
        ok, buf = cv2.imencode(".jpg", img, flags)
        _write(tmp_path, name, buf.tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "p.jpg").pixels, read_image(tmp_path / "b.jpg").pixels)


# --- truncated and damaged files ------------------------------------------------------------------

@pytest.mark.parametrize("source", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("keep", [0.2, 0.5, 0.95])
def test_truncated_jpeg_with_end_marker_is_an_error_not_a_grey_film(tmp_path, source, keep, capfd):
    """A real film, as JPEG, cut short and given back its FFD9: libjpeg fills the rest grey and only
    warns on stderr. The warning becomes the error, and nothing reaches the console."""
    path = _write(tmp_path, "cut.jpg", bombs.truncated_jpeg_with_eoi(source, keep=keep))
    _refused(path, UnreadableImage, r"damaged JPEG image data, the decoder reports: Corrupt JPEG data: "
             r"premature end of data segment")
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("source", EXAMPLES[:3], ids=lambda p: p.stem)
def test_png_whose_stream_holds_half_the_rows_is_an_error(tmp_path, source, capfd):
    _refused(_write(tmp_path, "half.png", bombs.truncated_png_stream(source)), UnreadableImage,
             r"damaged PNG image data, the decoder reports: Not enough image data")
    assert capfd.readouterr() == ("", "")


def test_intact_jpegs_read_silently_and_stderr_is_given_back(tmp_path, capfd):
    import cv2

    for source in EXAMPLES:
        ok, buf = cv2.imencode(".jpg", cv2.imread(str(source), cv2.IMREAD_GRAYSCALE))
        image = read_image(_write(tmp_path, "whole.jpg", buf.tobytes()))
        assert image.shape == (512, 512) or min(image.shape) > 0
    with pytest.raises(UnreadableImage):
        read_image(_write(tmp_path, "cut.jpg", bombs.truncated_jpeg_with_eoi(EXAMPLES[0])))
    os.write(2, b"stderr still works\n")
    assert capfd.readouterr() == ("", "stderr still works\n")
