"""The three rendering faults the DCMTK comparison found, pinned by exact values (no DCMTK needed).

Each film comes from the same generator as the differential suite; the expected pixels are
computed here from PS3.3 C.11 directly, so these tests run wherever cxrkit does.
"""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.io import read_image

from . import dcmtk_cases as dc

RAW = dc.film(0, 4095)  # 12-bit stored values
MAXVAL = 4095.0


def test_voi_lut_negative_first_value_written_as_us_is_read_signed(tmp_path):
    """PR 0, rescale to -1024..3071, VOI LUT starting at -1024 with a US descriptor (64512).
    Read unsigned, every pixel falls below the table: a uniformly black film."""
    table = np.arange(4096) * 16  # 16-bit table, entry k for modality value k - 1024
    path = dc.write(
        tmp_path / "neg_first.dcm", RAW, bits_stored=12, RescaleSlope=1, RescaleIntercept=-1024,
        VOILUTSequence=[dc.lut_item(65536 - 1024, table, 16)],
    )
    image = read_image(path)
    assert image.meta["window_source"] == "voi_lut"
    expected = table[RAW] * (MAXVAL / 65535)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-2)
    assert image.pixels.std() > 500  # not the black film


def test_voi_lut_first_value_stays_unsigned_when_nothing_can_be_negative(tmp_path):
    """PR 0 and no rescale: a first value of 40000 is 40000 (a 16-bit film's upper half)."""
    raw = dc.film(30000, 50000)
    table = np.arange(10000) * 6  # covers 40000..49999
    path = dc.write(tmp_path / "high_first.dcm", raw, bits_stored=16, VOILUTSequence=[dc.lut_item(40000, table, 16)])
    image = read_image(path)
    expected = table[np.clip(raw - 40000, 0, len(table) - 1)].astype(np.float64)  # 16-bit film: maxval 65535
    np.testing.assert_allclose(image.pixels, expected, atol=1e-2)


def test_voi_lut_first_value_follows_the_rescaled_range_not_pixel_representation(tmp_path):
    """Signed pixels rescaled to 37768..52768 cannot be negative: a first value of 40000 is
    40000, not -25536 (which would put every pixel past the table's end: a white film)."""
    raw = dc.film(5000, 20000)
    table = np.arange(10000) * 6
    path = dc.write(
        tmp_path / "signed_positive.dcm", raw, bits_stored=16, signed=True, RescaleSlope=1, RescaleIntercept=32768,
        VOILUTSequence=[dc.lut_item(40000, table, 16)],
    )
    image = read_image(path)
    expected = table[np.clip(raw + 32768 - 40000, 0, len(table) - 1)].astype(np.float64)  # maxval 65535
    np.testing.assert_allclose(image.pixels, expected, atol=1e-2)


@pytest.mark.parametrize("bits", [10, 12, 15])
def test_modality_lut_of_10_to_15_bits_is_applied(tmp_path, bits):
    """pydicom refuses such tables ('uint12'); they used to be dropped and the raw values shown."""
    top = 2**bits - 1
    table = np.rint((np.arange(4096) / 4095) ** 2 * top).astype(np.int64)  # a curve, not the identity
    path = dc.write(tmp_path / f"mlut{bits}.dcm", RAW, bits_stored=12, ModalityLUTSequence=[dc.lut_item(0, table, bits)])
    image = read_image(path)
    mapped = table[RAW].astype(np.float64)
    expected = (mapped - mapped.min()) / (mapped.max() - mapped.min()) * MAXVAL  # no window: min/max
    assert image.meta["window_source"] == "minmax"
    np.testing.assert_allclose(image.pixels, expected, atol=1e-2)


def test_modality_lut_first_value_follows_pixel_representation(tmp_path):
    """Signed pixels: the Modality LUT's first stored value -2048 may be written as US 63488."""
    raw = dc.film(-2048, 2047)
    table = np.arange(4096) // 2  # 11-bit output
    path = dc.write(
        tmp_path / "mlut_signed.dcm", raw, bits_stored=12, signed=True,
        ModalityLUTSequence=[dc.lut_item(65536 - 2048, table, 11)], WindowCenter=1024, WindowWidth=2048,
    )
    image = read_image(path)
    mapped = table[raw + 2048].astype(np.float64)
    expected = np.clip((mapped - (1024 - 0.5)) / 2047 + 0.5, 0, 1) * MAXVAL  # PS3.3 C.11.2.1.2 LINEAR
    np.testing.assert_allclose(image.pixels, expected, atol=1e-2)


def test_overstated_voi_lut_depth_uses_the_datas_depth(tmp_path):
    """A 12-bit table declared 16-bit would show at 1/16 brightness; its data's depth is 12."""
    table = np.rint(np.linspace(0, 1, 4096) ** 0.7 * 4095).astype(np.int64)
    path = dc.write(tmp_path / "overstated.dcm", RAW, bits_stored=12, VOILUTSequence=[dc.lut_item(0, table, 16)])
    image = read_image(path)
    np.testing.assert_allclose(image.pixels, table[RAW].astype(np.float64), atol=1e-2)  # white 4095 -> maxval
    assert image.pixels.max() == MAXVAL


def test_voi_lut_using_most_of_its_declared_depth_is_taken_at_its_word(tmp_path):
    """Data reaching 40000 of a declared 16-bit range: a dim table is the author's choice."""
    table = np.linspace(0, 40000, 4096).round().astype(np.int64)
    path = dc.write(tmp_path / "dim.dcm", RAW, bits_stored=12, VOILUTSequence=[dc.lut_item(0, table, 16)])
    image = read_image(path)
    np.testing.assert_allclose(image.pixels, table[RAW] * (MAXVAL / 65535), atol=1e-2)
