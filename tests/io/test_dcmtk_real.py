"""Every readable real DICOM in ../shared/data/dicom renders like DCMTK's ``dcmj2pnm``.

Rendering is compared on the same decoded pixels: each film is first decompressed by DCMTK
(``dcmdjpeg``, ``dcmdjpls``; pydicom for JPEG 2000, for which DCMTK has no free codec), then
that uncompressed copy goes through ``read_image`` and through ``dcmj2pnm`` with the VOI
cxrkit's rules choose. Two JPEG decoders may round a lossy film's IDCT differently by one
stored value (3 % of ``Fake_MONOHR1.dcm``'s pixels), which is not a rendering difference.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("dcmj2pnm") is None, reason="DCMTK's dcmj2pnm is not installed (Debian/Ubuntu: apt-get install dcmtk)"
)

TOLERANCE = 1.0 + 1e-3  # one 8-bit grey level (DCMTK writes integers) plus float32 noise
#: 966.dcm is the unfixed twin of 966_fixed.dcm: its JPEG 2000 stream does not decode (tested elsewhere).
READABLE = [
    "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
    "966_fixed.dcm",
    "Fake_MONOHR1.dcm",
    "JPEG2KLossless_1s_1f_u_16_16.dcm",
    "RG1_J2KI.dcm",
    "RG1_JLSN.dcm",
    "RG2_JLSL.dcm",
    "RG2_JLSN.dcm",
    "RG2_JPLL.dcm",
    "RG2_JPLY.dcm",
    "RG3_J2KI.dcm",
    "RG3_J2KR.dcm",
]


from . import dcmtk_cases as dc  # noqa: E402  (the case generator; also a script)

VOI_OPTION = {"window": ("+Wi", "1"), "voi_lut": ("+Wl", "1"), "minmax": ("+Wm",)}


def _uncompressed(src: Path, dst: Path) -> str:
    """Decompress ``src`` into ``dst`` with DCMTK where it can; returns the decoder used."""
    for tool in ("dcmdjpeg", "dcmdjpls"):
        if shutil.which(tool) and subprocess.run([tool, str(src), str(dst)], capture_output=True).returncode == 0:
            return tool
    import pydicom

    ds = pydicom.dcmread(src)
    ds.decompress()
    ds.save_as(dst)
    return "pydicom"


@pytest.mark.parametrize("name", READABLE)
def test_real_dicom_renders_like_dcmtk(shared_data, tmp_path, name):
    src = shared_data / "dicom" / name
    if not src.is_file():
        pytest.skip(f"{name} not in ../shared/data/dicom")
    copy = tmp_path / "film.dcm"
    _uncompressed(src, copy)
    ours, meta = dc.render_cxrkit(copy)
    theirs = dc.render_dcmtk(copy, VOI_OPTION[meta["window_source"]])
    assert theirs.shape == ours.shape and theirs.std() > 10
    assert float(np.abs(ours - theirs).max()) <= TOLERANCE
