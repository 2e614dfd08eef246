"""DICOM grey-scale rules on tiny synthetic files: windows against pydicom's reference,
inversion exactly once, VOI LUT, min/max fallback, preamble-less files, no PHI in errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxrkit.errors import UnreadableImage, UnsupportedDicom
from cxrkit.io import detect_format, is_image_file, read_image
from cxrkit.io.dicom import parse_age

DX_SOP = "1.2.840.10008.5.1.4.1.1.1.1"


def make_dicom(
    path: Path,
    pixels: np.ndarray | None,
    *,
    modality: str | None = "DX",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    preamble: bool = True,
    **elements: Any,
) -> Path:
    """Write ``pixels`` (H, W), (F, H, W) or (H, W, 3) as an Explicit VR Little Endian DICOM."""
    ds = Dataset()
    ds.SOPClassUID = DX_SOP
    ds.SOPInstanceUID = generate_uid()
    if modality is not None:
        ds.Modality = modality
    ds.PatientName = "Secret^Patient"
    ds.PatientID = "PID-12345"
    if pixels is not None:
        arr = np.ascontiguousarray(pixels)
        colour = arr.ndim == 3 and arr.shape[-1] == 3
        frames = arr.shape[0] if arr.ndim == 3 and not colour else 1
        rows, cols = (arr.shape[:2] if colour else arr.shape[-2:])
        bits = arr.dtype.itemsize * 8
        ds.Rows, ds.Columns = int(rows), int(cols)
        ds.SamplesPerPixel = 3 if colour else 1
        ds.PhotometricInterpretation = "RGB" if colour else photometric
        if colour:
            ds.PlanarConfiguration = 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.BitsAllocated = bits
        ds.BitsStored = bits_stored or bits
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
        ds.PixelData = arr.tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = DX_SOP
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.preamble = b"\0" * 128
        dcmwrite(path, ds, enforce_file_format=True)
    else:
        dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    return path


RAMP12 = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)  # 0..4095, every 12-bit value once


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_window_matches_pydicom_reference(tmp_path, function):
    path = make_dicom(
        tmp_path / "w.dcm", RAMP12, bits_stored=12, WindowCenter=2000, WindowWidth=1001,
        VOILUTFunction=function,
    )
    image = read_image(path)
    ds = dcmread(path)
    reference = apply_voi_lut(ds.pixel_array, ds)  # float64, output range [0, 4095]
    assert image.meta["window_source"] == "window" and image.meta["window"] == (2000.0, 1001.0)
    assert image.maxval == 4095
    np.testing.assert_allclose(image.pixels, reference, atol=0.05)


def test_monochrome1_is_exactly_inverted(tmp_path):
    kwargs = dict(bits_stored=12, WindowCenter=2048, WindowWidth=2048)
    mono2 = read_image(make_dicom(tmp_path / "m2.dcm", RAMP12, **kwargs))
    mono1 = read_image(make_dicom(tmp_path / "m1.dcm", RAMP12, photometric="MONOCHROME1", **kwargs))
    assert mono1.meta["inverted"] and not mono2.meta["inverted"]
    np.testing.assert_allclose(mono1.pixels, mono2.maxval - mono2.pixels, atol=1e-3)
    assert mono1.pixels[0, 0] == mono1.maxval  # raw 0 displays white


@pytest.mark.parametrize(
    "photometric, shape, inverted",
    [("MONOCHROME2", "INVERSE", True), ("MONOCHROME1", "INVERSE", True), ("MONOCHROME1", "IDENTITY", True),
     ("MONOCHROME2", "IDENTITY", False)],
)
def test_presentation_lut_shape_inverts_once(tmp_path, photometric, shape, inverted):
    image = read_image(
        make_dicom(tmp_path / "p.dcm", RAMP12, bits_stored=12, photometric=photometric, PresentationLUTShape=shape)
    )
    assert image.meta["inverted"] is inverted
    assert image.pixels[0, 0] == (image.maxval if inverted else 0)


def test_window_outside_pixels_falls_back_to_exact_minmax(tmp_path):
    raw = (RAMP12 // 4 + 30000).astype(np.uint16)  # 30000..31023, like the JPEG2K test file
    image = read_image(make_dicom(tmp_path / "o.dcm", raw, WindowCenter=2725, WindowWidth=5310))
    assert image.meta["window_source"] == "minmax" and image.maxval == 65535
    expected = (raw.astype(np.float64) - 30000) / 1023 * 65535
    np.testing.assert_allclose(image.pixels, expected, atol=0.05)


def test_voi_lut_sequence(tmp_path):
    raw = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 16)  # 0..4080
    item = Dataset()
    item.add_new(0x00283002, "US", [256, 0, 8])  # LUTDescriptor: 256 entries, first input 0, 8-bit
    item.add_new(0x00283006, "US", [255 - i for i in range(256)])  # LUTData, decreasing: easy to check
    path = make_dicom(tmp_path / "l.dcm", raw, bits_stored=12, VOILUTSequence=[item])
    image = read_image(path)
    assert image.meta["window_source"] == "voi_lut"
    # input > 255 clips to the last entry (0); input 0..255 maps to 255..0, scaled to 4095
    assert image.pixels[0, 0] == pytest.approx(4095)
    assert image.pixels[0, 1] == pytest.approx((255 - 16) / 255 * 4095, abs=0.05)
    assert image.pixels[-1, -1] == 0


def test_signed_pixels_and_rescale_are_applied_before_the_window(tmp_path):
    raw = (np.arange(64 * 64).reshape(64, 64) - 2048).astype(np.int16)
    path = make_dicom(tmp_path / "s.dcm", raw, bits_stored=12, RescaleSlope=0.5, RescaleIntercept=1024)
    image = read_image(path)
    # min/max of the modality values (0..2047.5) spans [0, 4095] linearly
    values = raw.astype(np.float64) * 0.5 + 1024
    np.testing.assert_allclose(image.pixels, (values - values.min()) / np.ptp(values) * 4095, atol=0.05)


def test_preamble_less_dicom_is_detected_and_read(tmp_path):
    path = make_dicom(tmp_path / "IM0001", RAMP12, bits_stored=12, preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    assert detect_format(path) == "dicom" and is_image_file(path)
    image = read_image(path)
    assert image.meta["transfer_syntax"] == "1.2.840.10008.1.2"
    np.testing.assert_allclose(image.pixels, RAMP12, atol=1e-3)  # min/max of 0..4095 is the identity


def test_hidden_files_are_not_images(tmp_path):
    make_dicom(tmp_path / ".IM0001.dcm", RAMP12)
    assert not is_image_file(tmp_path / ".IM0001.dcm")
    assert not is_image_file(tmp_path)


def test_detect_format_on_header_bytes():
    assert detect_format(b"\x89PNG\r\n\x1a\n" + b"\0" * 20) == "png"
    assert detect_format(b"\0" * 128 + b"DICM") == "dicom"
    assert detect_format(b"hello world, this is text") is None


@pytest.mark.parametrize("modality", ["MR", "US", "SR", "MG"])
def test_non_radiograph_modalities_refused(tmp_path, modality):
    path = make_dicom(tmp_path / "x.dcm", RAMP12, modality=modality)
    with pytest.raises(UnsupportedDicom, match=f"modality '{modality}'"):
        read_image(path)


def test_errors_never_carry_patient_identifiers(tmp_path):
    path = make_dicom(tmp_path / "x.dcm", np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(UnsupportedDicom) as exc:
        read_image(path)
    assert "Secret" not in str(exc.value) and "PID-12345" not in str(exc.value)


def test_no_pixel_data_names_the_object(tmp_path):
    path = make_dicom(tmp_path / "sr.dcm", None)
    with pytest.raises(UnsupportedDicom, match="no pixel data"):
        read_image(path)


def test_truncated_uncompressed_pixel_data(tmp_path):
    path = make_dicom(tmp_path / "t.dcm", RAMP12)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(UnreadableImage, match="truncated uncompressed pixel data"):
        read_image(path)


@pytest.mark.parametrize(
    "text, years",
    [("061Y", 61.0), ("006M", 0.5), ("003W", 3 * 7 / 365.25), ("010D", 10 / 365.25), ("62", 62.0),
     ("", None), (None, None), ("abc", None)],
)
def test_parse_age(text, years):
    assert parse_age(text) == (None if years is None else pytest.approx(years, abs=1e-3))


def test_mislabelled_negative_follows_its_tags(shared_data):
    """JPEG2KLossless_1s_1f_u_16_16 is tagged MONOCHROME2/IDENTITY but stores a negative
    (spine and vessels dark). The rule is to follow the tags, so it reads as that negative;
    this pins the behaviour so nobody "fixes" one file by guessing for all."""
    image = read_image(shared_data / "dicom" / "JPEG2KLossless_1s_1f_u_16_16.dcm")
    p = image.pixels
    h, w = p.shape
    rows = slice(h // 3, 2 * h // 3)
    lungs = (p[rows, w // 8 : w // 3].mean() + p[rows, 2 * w // 3 : 7 * w // 8].mean()) / 2
    assert image.meta["inverted"] is False
    assert lungs > p[rows, 5 * w // 12 : 7 * w // 12].mean() * 2
