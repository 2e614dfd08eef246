"""Every real DICOM in ../shared/data/dicom: decodes, right range, right way up (pixel facts, not shapes)."""

import numpy as np
import pytest

from cxrkit.errors import UnreadableImage
from cxrkit.io import read_image

CHESTS = ["RG1_J2KI.dcm", "RG1_JLSN.dcm", "966_fixed.dcm", "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"]
EXPECTED = {  # file: (height, width, maxval, photometric)
    "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm": (1024, 1024, 255, "MONOCHROME2"),
    "966_fixed.dcm": (2128, 2000, 4095, "MONOCHROME1"),
    "Fake_MONOHR1.dcm": (1024, 1024, 255, "MONOCHROME1"),
    "JPEG2KLossless_1s_1f_u_16_16.dcm": (1416, 1420, 65535, "MONOCHROME2"),
    "RG1_J2KI.dcm": (1955, 1841, 32767, "MONOCHROME1"),
    "RG1_JLSN.dcm": (1955, 1841, 32767, "MONOCHROME1"),
    "RG2_JLSL.dcm": (2140, 1760, 1023, "MONOCHROME2"),
    "RG2_JLSN.dcm": (2140, 1760, 1023, "MONOCHROME2"),
    "RG2_JPLL.dcm": (2140, 1760, 1023, "MONOCHROME2"),
    "RG2_JPLY.dcm": (2140, 1760, 1023, "MONOCHROME2"),
    "RG3_J2KI.dcm": (1760, 1760, 1023, "MONOCHROME1"),
    "RG3_J2KR.dcm": (1760, 1760, 1023, "MONOCHROME1"),
}


@pytest.fixture(scope="module")
def dicom_dir(shared_data):
    return shared_data / "dicom"


def _lung_vs_mediastinum(pixels):
    h, w = pixels.shape
    rows = slice(h // 3, 2 * h // 3)
    lungs = (pixels[rows, w // 8 : w // 3].mean() + pixels[rows, 2 * w // 3 : 7 * w // 8].mean()) / 2
    mediastinum = pixels[rows, 5 * w // 12 : 7 * w // 12].mean()
    return lungs, mediastinum


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_valid_file_reads_with_its_true_range(dicom_dir, name):
    image = read_image(dicom_dir / name)
    height, width, maxval, photometric = EXPECTED[name]
    assert image.pixels.shape == (height, width) and image.pixels.dtype == np.float32
    assert image.maxval == maxval
    assert image.meta["photometric"] == photometric and image.meta["format"] == "dicom"
    assert 0 <= image.pixels.min() < image.pixels.max() <= maxval
    assert image.pixels.std() > maxval * 0.05  # a real picture, not a constant from a bad window


@pytest.mark.parametrize("name", CHESTS)
def test_lungs_darker_than_mediastinum_for_monochrome1_and_2(dicom_dir, name):
    image = read_image(dicom_dir / name)
    lungs, mediastinum = _lung_vs_mediastinum(image.pixels)
    assert lungs < mediastinum * 0.9, (name, lungs, mediastinum)


def test_presentation_lut_inverse_with_monochrome1_inverts_once(dicom_dir):
    """966_fixed is MONOCHROME1 *and* Presentation LUT Shape INVERSE: one inversion, not two."""
    image = read_image(dicom_dir / "966_fixed.dcm")
    assert image.meta["inverted"] is True
    lungs, mediastinum = _lung_vs_mediastinum(image.pixels)
    assert lungs < mediastinum


def test_relabelled_monochrome1_is_the_inverse_of_its_twin(dicom_dir):
    twin = read_image(dicom_dir / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    fake = read_image(dicom_dir / "Fake_MONOHR1.dcm")
    np.testing.assert_allclose(fake.pixels, twin.maxval - twin.pixels, atol=1e-3)


def test_lossy_12bit_jpeg_extended_matches_lossless(dicom_dir):
    """RG2_JPLY needs the imagecodecs fallback; it must agree with the lossless encoding of the same film."""
    lossy = read_image(dicom_dir / "RG2_JPLY.dcm").pixels.ravel()
    lossless = read_image(dicom_dir / "RG2_JPLL.dcm").pixels.ravel()
    assert np.corrcoef(lossy, lossless)[0, 1] > 0.999


def test_jpeg2000_and_jpegls_encodings_of_one_film_agree(dicom_dir):
    a = read_image(dicom_dir / "RG1_J2KI.dcm").pixels.ravel()
    b = read_image(dicom_dir / "RG1_JLSN.dcm").pixels.ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_window_outside_pixel_range_falls_back(dicom_dir):
    """The stored window (2725/5310) lies below every pixel (32744-65535): applying it gives a constant image."""
    image = read_image(dicom_dir / "JPEG2KLossless_1s_1f_u_16_16.dcm")
    assert image.meta["window_source"] != "window"
    assert len(np.unique(image.pixels[::16, ::16])) > 1000


def test_corrupt_codestream_is_one_clear_error(dicom_dir, capfd):
    with pytest.raises(UnreadableImage) as info:
        read_image(dicom_dir / "966.dcm")
    assert info.value.path.endswith("966.dcm")
    assert "corrupt" in info.value.reason and "JPEG 2000" in info.value.reason
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # decoders must not spill onto the console


def test_metadata_without_identifiers(dicom_dir):
    image = read_image(dicom_dir / "966_fixed.dcm")
    meta = image.meta
    assert meta["modality"] == "DX" and meta["bit_depth"] == 12
    assert meta["pixel_spacing"] is not None and all(s > 0 for s in meta["pixel_spacing"])
    assert not any("name" in key.lower() or key.lower() == "patient_id" for key in meta)
