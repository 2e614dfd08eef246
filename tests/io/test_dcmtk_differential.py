"""cxrkit's grey-scale rendering against DCMTK's ``dcmj2pnm``, film by film (see docs/io.md).

Every generated film (``dcmtk_cases.py``) is rendered by DCMTK with the options that select
the VOI cxrkit's rules choose, and by ``read_image``; both are compared on an 8-bit display
scale (cxrkit's float pixels x 255 / maxval against DCMTK's 8-bit PNG). Where the standard and
DCMTK agree the two must be within one grey level: DCMTK writes integers, so its rounding
alone costs up to one. Windows and min/max are also held to one level of a 16-bit PNG; VOI
LUT films are not, because DCMTK widens an n-bit table value to 16 bits by shifting (8-bit
white 255 becomes 65280, not 65535), a convention, not a rendering. The three deliberate
differences are asserted as what they are: cxrkit equals DCMTK run with the options that
express cxrkit's documented choice, and differs from DCMTK's default by far more than rounding.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("dcmj2pnm") is None, reason="DCMTK's dcmj2pnm is not installed (Debian/Ubuntu: apt-get install dcmtk)"
)

#: One grey level of an 8-bit display, plus float32 noise (DCMTK's integer output is the rest).
TOLERANCE = 1.0 + 1e-3
#: One level of a 16-bit PNG, plus cxrkit's float32 arithmetic on that scale (~1e-7 relative,
#: <= 0.002 levels measured, the sigmoid's exp included).
TOLERANCE_16 = 1.0 + 1e-2


from . import dcmtk_cases as dc  # noqa: E402  (the case generator; also a script)

AGREE = [case for case in dc.CASES if case.expect == "agree"]
AGREE_16 = [case for case in AGREE if case.source != "voi_lut" and not case.slack]
DIFFER = {case.expect: case for case in dc.CASES if case.expect != "agree"}


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("case", AGREE, ids=[case.name for case in AGREE])
def test_rendering_agrees_with_dcmtk(tmp_path, case):
    path = case.make(tmp_path / f"{case.name}.dcm")
    ours, meta = dc.render_cxrkit(path)
    assert meta["window_source"] == case.source  # the VOI we compare is the one the rules pick
    theirs = dc.render_dcmtk(path, case.dcmtk)
    assert theirs.std() > 20  # a picture, not a constant both sides could agree on
    assert max_difference(ours, theirs) <= TOLERANCE + case.slack


@pytest.mark.parametrize("case", AGREE_16, ids=[case.name for case in AGREE_16])
def test_windows_agree_with_dcmtk_on_a_16_bit_scale(tmp_path, case):
    path = case.make(tmp_path / f"{case.name}.dcm")
    ours, _ = dc.render_cxrkit(path, depth=16)
    assert max_difference(ours, dc.render_dcmtk(path, case.dcmtk, depth=16)) <= TOLERANCE_16


def test_voi_lut_16_bit_difference_is_dcmtks_bit_shift(tmp_path):
    """On a 16-bit PNG DCMTK shows 8-bit table value v as 256 v; cxrkit (and PS3.3's IDENTITY
    presentation: the table's white is the display's white) as 65535 v / 255 = 257 v."""
    case = next(case for case in dc.CASES if case.name == "voi_lut_8bit")
    path = case.make(tmp_path / "voi8.dcm")
    ours, _ = dc.render_cxrkit(path, depth=16)
    theirs = dc.render_dcmtk(path, case.dcmtk, depth=16)
    np.testing.assert_allclose(ours / 257, theirs / 256, atol=1e-3)  # the same table values


def test_overstated_voi_lut_depth_uses_the_datas_depth(tmp_path):
    """A 12-bit table declared 16-bit: DCMTK's default renders the film at 1/16 brightness;
    cxrkit uses the data's own depth, which is DCMTK's ``+Mv`` (ignore the declared depth)."""
    case = DIFFER["overstated_voi_lut"]
    path = case.make(tmp_path / "overstated.dcm")
    ours, meta = dc.render_cxrkit(path)
    assert meta["window_source"] == "voi_lut"
    assert dc.equivalent_options(case) == ("+Wl", "1", "+Mv")
    assert max_difference(ours, dc.render_dcmtk(path, dc.equivalent_options(case))) <= TOLERANCE
    default = dc.render_dcmtk(path, case.dcmtk)
    assert default.max() <= 16 and ours.max() >= 254  # DCMTK's default: nearly black


def test_window_covering_almost_no_pixels_falls_back_to_minmax(tmp_path):
    """A stored window that holds < 5 % of the pixels makes a binary mask of the film (DCMTK
    applies it); cxrkit shows the pixels' min/max instead, DCMTK's ``+Wm``."""
    case = DIFFER["window_outside"]
    path = case.make(tmp_path / "outside.dcm")
    ours, meta = dc.render_cxrkit(path)
    assert meta["window_source"] == "minmax"
    assert dc.equivalent_options(case) == ("+Wm",)
    assert max_difference(ours, dc.render_dcmtk(path, dc.equivalent_options(case))) <= TOLERANCE
    applied = dc.render_dcmtk(path, case.dcmtk)
    assert len(np.unique(applied)) <= 2  # DCMTK's rendering of the window: a constant or a mask


def test_monochrome1_with_identity_shape_still_displays_low_values_white(tmp_path):
    """MONOCHROME1 + Presentation LUT Shape IDENTITY: DCMTK lets IDENTITY cancel the
    MONOCHROME1 inversion and shows a negative; cxrkit inverts for MONOCHROME1 whatever the
    shape says (for DX, PS3.3 C.8.11.6.1.2 allows only INVERSE with MONOCHROME1, so IDENTITY
    there is a wrong tag, and a model must never see a negative): DCMTK's rendering with its
    polarity changed (``+P``)."""
    case = DIFFER["monochrome1_identity"]
    path = case.make(tmp_path / "m1_identity.dcm")
    ours, meta = dc.render_cxrkit(path)
    assert meta["inverted"] is True
    assert dc.equivalent_options(case) == ("+Wi", "1", "+P")
    assert max_difference(ours, dc.render_dcmtk(path, dc.equivalent_options(case))) <= TOLERANCE
    assert max_difference(ours, 255 - dc.render_dcmtk(path, case.dcmtk)) <= TOLERANCE


def test_every_generated_case_is_classified():
    """The table in docs/io.md lists every case; a new case must say whether it agrees."""
    assert {case.expect for case in dc.CASES} == {"agree", *DIFFER}
    assert set(DIFFER) == {"overstated_voi_lut", "window_outside", "monochrome1_identity"}
    assert len({case.name for case in dc.CASES}) == len(dc.CASES)
