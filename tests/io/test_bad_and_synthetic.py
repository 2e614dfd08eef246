"""Rasters and synthetic DICOMs: bit depth, colour rule, and a clear typed error for every bad input."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxrkit.errors import UnreadableImage, UnsupportedDicom, UnsupportedImage
from cxrkit.io import detect_format, is_image_file, read_image


def _gradient(dtype=np.uint8, shape=(40, 60)):
    top = np.iinfo(dtype).max
    return (np.linspace(0, top, shape[0] * shape[1]).reshape(shape)).astype(dtype)


def test_8bit_png_real_nih(shared_data):
    path = next((shared_data / "nih" / "images").glob("*.png"))
    image = read_image(path)
    assert image.pixels.dtype == np.uint8 and image.maxval == 255 and image.pixels.shape == (512, 512)
    np.testing.assert_array_equal(image.pixels, np.asarray(Image.open(path).convert("L")))


def test_16bit_png_keeps_values_and_white_level(tmp_path):
    pixels = _gradient(np.uint16)
    cv2.imwrite(str(tmp_path / "x.png"), pixels)
    image = read_image(tmp_path / "x.png")
    assert image.maxval == 65535 and image.meta["bit_depth"] == 16
    np.testing.assert_array_equal(image.pixels, pixels)


def test_16bit_tiff_and_8bit_jpeg(tmp_path):
    pixels = _gradient(np.uint16)
    cv2.imwrite(str(tmp_path / "x.tif"), pixels)
    tif = read_image(tmp_path / "x.tif")
    assert tif.maxval == 65535
    np.testing.assert_array_equal(tif.pixels, pixels)
    cv2.imwrite(str(tmp_path / "x.jpg"), _gradient(), [cv2.IMWRITE_JPEG_QUALITY, 95])
    jpg = read_image(tmp_path / "x.jpg")
    assert jpg.maxval == 255 and jpg.meta["format"] == "jpeg"
    assert np.abs(jpg.pixels.astype(int) - _gradient().astype(int)).mean() < 3


def test_rgb_with_equal_channels_is_exactly_the_gray_image(tmp_path):
    gray = _gradient()
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png").pixels, gray)


def test_rgba_drops_alpha_and_uses_luma(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 200, 100, 50, 7  # alpha ignored
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert image.pixels.shape == (4, 4) and int(image.pixels[0, 0]) == expected


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UnreadableImage, match="empty"):
        read_image(tmp_path / "empty.png")


def test_truncated_png(tmp_path, example_images):
    data = example_images[0].read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImage) as info:
        read_image(tmp_path / "cut.png")
    assert "truncat" in info.value.reason.lower() or "corrupt" in info.value.reason.lower()


def test_text_named_like_an_image(tmp_path):
    for name in ("notes.dcm", "notes.png"):
        (tmp_path / name).write_text("Patient report: nothing to see.\n")
        with pytest.raises(UnreadableImage) as info:
            read_image(tmp_path / name)
        assert info.value.path.endswith(name)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UnreadableImage, match="(?i)no such|not found|does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(UnreadableImage, match="(?i)folder|directory"):
        read_image(tmp_path)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def test_huge_dimensions_refused_before_decoding(tmp_path):
    """A 60000 x 60000 header (3.6 gigapixels) is refused from its header, in a small file."""
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + _chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(UnsupportedImage) as info:
        read_image(tmp_path / "bomb.png")
    assert "60000" in info.value.reason and "CXRKIT_MAX_PIXELS" in info.value.reason


def _dicom(tmp_path, name, **overrides):
    """A small uncompressed DICOM written with pydicom."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "CR", "Doe^Jane", "SECRET-ID-123"
    ds.PatientAge, ds.PatientSex, ds.ViewPosition = "061Y", "F", "PA"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 32, 48, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = (np.arange(32 * 48).reshape(32, 48) % 4096).astype(np.uint16)
    for key, value in overrides.items():
        if key == "pixels":
            pixels = value
        else:
            setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path, pixels


def test_synthetic_dicom_modality_lut_window_and_meta(tmp_path):
    signed = (np.arange(32 * 48).reshape(32, 48) - 700).astype(np.int16)
    path, _ = _dicom(tmp_path, "ct_like_cr", PixelRepresentation=1, RescaleSlope=2, RescaleIntercept=-100,
                     WindowCenter=0, WindowWidth=1000, pixels=signed)
    image = read_image(path)
    assert image.meta["window_source"] == "window" and image.maxval == 4095
    values = signed.astype(np.float64) * 2 - 100
    inside = (values > -400) & (values < 400)
    # linear window: monotone, clipped at both ends
    assert image.pixels[values <= -500].max() == 0 and image.pixels[values >= 500].min() == image.maxval
    flat = image.pixels[inside]
    assert np.all(np.diff(flat[np.argsort(values[inside])]) >= 0)
    assert image.meta["patient_age"] == 61 and image.meta["patient_sex"] == "F" and image.meta["view_position"] == "PA"
    assert "SECRET" not in repr(image.meta) and "Doe" not in repr(image.meta)


def test_dicom_without_extension_detected_by_content(tmp_path):
    path, pixels = _dicom(tmp_path, "IM0001")
    assert detect_format(path) == "dicom" and is_image_file(path)
    assert read_image(path).pixels.shape == pixels.shape
    (tmp_path / "scan.dat").write_bytes((tmp_path / "IM0001").read_bytes())
    assert is_image_file(tmp_path / "scan.dat")
    (tmp_path / "readme.txt").write_text("hello")
    assert not is_image_file(tmp_path / "readme.txt") and detect_format(tmp_path / "readme.txt") is None


def test_png_named_dat_is_a_png(tmp_path, example_images):
    (tmp_path / "x.dat").write_bytes(example_images[0].read_bytes())
    assert detect_format(tmp_path / "x.dat") == "png"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"Modality": "CT"}, "CT"),
        ({"NumberOfFrames": 2, "pixels": np.zeros((2, 32, 48), np.uint16)}, "frame"),
        ({"SamplesPerPixel": 3, "PhotometricInterpretation": "RGB", "PlanarConfiguration": 0,
          "pixels": np.zeros((32, 48, 3), np.uint16)}, "colour|color|RGB"),
    ],
    ids=["ct", "multiframe", "colour"],
)
def test_unsupported_dicoms_are_typed_errors(tmp_path, overrides, message):
    path, _ = _dicom(tmp_path, "x.dcm", **overrides)
    with pytest.raises(UnsupportedDicom, match=message):
        read_image(path)


def test_dicom_without_pixels(tmp_path):
    path, _ = _dicom(tmp_path, "sr.dcm")
    import pydicom

    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(UnsupportedDicom, match="(?i)pixel"):
        read_image(path)
