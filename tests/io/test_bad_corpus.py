"""The committed bad-input corpus (``tests/fixtures/bad``): every file the fuzzer broke the reader
with, plus guards for the issue's named mutations, each read with its exact expected outcome.

Why: a fuzz run is random; these files pin each bug found to a fixed, tiny input, so a
regression fails here by name even if the fuzzer never draws that case again. The general
contract is checked for every file, and the specific outcome (reads with which window
source, or which error) for each.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cxrkit.errors import UnreadableImage, UnsupportedDicom, UnsupportedImage
from cxrkit.io import read_image

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
PHI = ("FUZZ^SECRET", "PID-FUZZ-0001", "19700101",  # the fake identifiers every seed carries
       "PHI_TOKEN", "19230417", "73147301")  # and those planted in the phi_ files

# file -> ("ok", window_source) or (error class, regex on the reason)
EXPECTED: dict[str, tuple] = {
    # bugs found by fuzzing (each fixed in src/cxrkit/io; see README.md in the corpus folder)
    "dcm_rescale_slope_nan.dcm": ("ok", "window"),
    "dcm_window_width_inf.dcm": ("ok", "minmax"),
    "dcm_voi_lut_empty_data.dcm": ("ok", "window"),
    "dcm_bits_stored_over_allocated.dcm": (UnreadableImage, r"BitsStored 24, BitsAllocated 16"),
    "dcm_bits_stored_65535.dcm": (UnreadableImage, r"BitsStored 65535, BitsAllocated 8"),
    "dcm_transfer_syntax_not_a_ts.dcm": (UnreadableImage, r"'1\.2\.3\.4' is not a DICOM transfer syntax"),
    "dcm_rle_panic.dcm": ("ok", "minmax"),
    "dcm_modality_lut_bits0.dcm": ("ok", "minmax"),
    "dcm_modality_lut_first_huge.dcm": ("ok", "minmax"),
    "dcm_modality_lut_short.dcm": ("ok", "window"),
    "dcm_modality_lut_empty_data.dcm": ("ok", "window"),
    "dcm_voi_lut_no_descriptor.dcm": ("ok", "minmax"),
    "dcm_voi_lut_one_value_descriptor.dcm": ("ok", "minmax"),
    "dcm_unknown_vr.dcm": (UnreadableImage, r"not a readable DICOM file.*\(0010,0040\)"),
    "dcm_sop_class_swallows_name.dcm": (UnsupportedDicom, r"no pixel data \(SOP class: \(an invalid value\)\)"),
    "dcm_jpegls_truncated.dcm": (UnreadableImage, r"truncated JPEG-LS .*no end-of-image marker"),
    "dcm_jpeg_lossless_truncated.dcm": (UnreadableImage, r"truncated JPEG Lossless.*no end-of-image marker"),
    "tif_wider_than_opencv.tif": (UnreadableImage, r"corrupt TIFF: \d+x16 uncompressed pixels need \d+ bytes"),
    # guards: mutations named in issue #12 that were already handled, kept so they stay so
    "guard_mono1_empty_voi_lut.dcm": ("ok", "window"),
    "guard_window_width_zero.dcm": ("ok", "minmax"),
    "guard_rescale_slope_zero.dcm": ("ok", "window"),
    "guard_rows_zero.dcm": (UnreadableImage, r"0x24 image"),
    "guard_rows_negative.dcm": (UnreadableImage, r"-1x24 image"),
    "guard_transfer_syntax_wrong.dcm": (UnreadableImage, r"corrupt or truncated compressed pixel data \(JPEG 2000"),
    "guard_pixeldata_short.dcm": (UnreadableImage, r"less than expected"),
    "guard_pixeldata_odd_length.dcm": ("ok", "window"),
    "guard_palette_colour.dcm": (UnsupportedDicom, r"'PALETTE COLOR'"),
    "guard_frames_1_declared_2.dcm": (UnsupportedDicom, r"multi-frame DICOM \(2 frames\)"),
    "guard_65535_one_pixel.dcm": ("ok", "minmax"),
    # decompression and decode-time bombs (made by tests/io/bombs.py; refused before decoding)
    "dcm_jpegls_sof_60000.dcm": (UnreadableImage, r"JPEG-LS .*codestream declares a 60000x60000 image but the header a 24x16"),
    "dcm_jpeg_lossless_sof_60000.dcm": (UnreadableImage, r"JPEG Lossless.*codestream declares a 60000x60000 image"),
    "dcm_jpeg_baseline_sof_60000.dcm": (UnreadableImage, r"JPEG Baseline.*codestream declares a 60000x60000 image"),
    "dcm_jpeg_extended_sof_60000.dcm": (UnreadableImage, r"JPEG Extended.*codestream declares a 60000x60000 image"),
    "dcm_j2k_siz_60000.dcm": (UnreadableImage, r"JPEG 2000.*codestream declares a 60000x60000 image"),
    "dcm_j2k_tiles_1x1.dcm": (UnreadableImage, r"tiling gives 90000 tiles \(JPEG 2000 allows 1 to 65535\)"),
    "dcm_rle_segment_12800.dcm": (UnreadableImage, r"RLE Lossless pixel data: a segment decodes to more than \d+ bytes for a 24x16"),
    "png_ihdr_8000x7000.png": (UnsupportedImage, r"8000x7000 = 56\.0 megapixels, over the limit of 50\.0 megapixels"),
    "jpg_progressive_101_scans.jpg": (UnsupportedImage, r"JPEG in 101 scans over 0\.0 megapixels, over the limit of 100 scans"),
    "jpg_truncated_eoi.jpg": (UnreadableImage, r"decoder reports: Corrupt JPEG data: premature end of data segment"),
    "png_half_stream.png": (UnreadableImage, r"decoder reports: Not enough image data"),
    "guard_deflated_private_1mib.dcm": ("ok", "minmax"),
    # a token planted in every identifying field, intact and broken (tests/reliability/phi_files.py)
    "phi_valid.dcm": ("ok", "window"),
    "phi_sop_class_swallows_patient.dcm": ("ok", "window"),
    "phi_sop_class_swallows_all.dcm": (UnsupportedDicom, r"no pixel data \(SOP class: \(an invalid value\)\)"),
    "phi_bad_sop_class.dcm": (UnsupportedDicom, r"no pixel data \(SOP class: \(an invalid value\)\)"),
    "phi_wrong_vrs.dcm": ("ok", "window"),
    "phi_invalid_values.dcm": ("ok", "window"),
    "phi_unknown_vr.dcm": (UnreadableImage, r"Unknown Value Representation '\.\.\.' in tag \(0010,0010\)"),
    "phi_unknown_charset.dcm": ("ok", "window"),
    "phi_value_past_end.dcm": (UnsupportedDicom, r"no pixel data \(SOP class: Digital X-Ray Image Storage"),
    "phi_corrupt_sequence.dcm": ("ok", "window"),
    "phi_implicit_no_preamble.dcm": ("ok", "window"),
    "phi_not_a_radiograph.dcm": (UnsupportedDicom, r"modality 'CT' is not a projection radiograph"),
    "phi_corrupt_jpeg.dcm": (UnreadableImage, r"JPEG Lossless"),
}


def test_every_corpus_file_has_an_expectation_and_a_readme_entry():
    """A file added without an expectation (or documentation) would test nothing."""
    files = {p.name for p in BAD.iterdir() if p.name != "README.md"}
    assert files == set(EXPECTED)
    readme = (BAD / "README.md").read_text()
    missing = [name for name in files if f"`{name}`" not in readme]
    assert not missing, f"not described in tests/fixtures/bad/README.md: {missing}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file(name, capfd):
    """The file reads to a finite image in [0, maxval] with the expected window source, or raises
    the expected typed error naming the file, in one line, without identifiers or console noise."""
    path = BAD / name
    expected = EXPECTED[name]
    if expected[0] == "ok":
        image = read_image(path)
        px = image.pixels
        assert px.ndim == 2 and px.size > 0 and np.isfinite(px).all()
        assert 0 <= px.min() and px.max() <= image.maxval
        assert np.log2(image.maxval + 1) in (8, 12, 16)
        if image.meta["format"] == "dicom":
            assert image.meta["window_source"] == expected[1]
    else:
        with pytest.raises(expected[0]) as info:
            read_image(path)
        message = str(info.value)
        assert type(info.value) is expected[0]
        assert str(path) in message and "\n" not in message
        assert re.search(expected[1], info.value.reason), info.value.reason
        assert not any(marker in message for marker in PHI)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no decoder spills onto the console (a Rust panic did)
