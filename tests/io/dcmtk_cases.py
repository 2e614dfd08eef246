"""Small DICOMs that walk every branch of the grey-scale chain, and how to render them with DCMTK.

Each :class:`Case` is one 64x64 film (a gradient with a disc, bars and a dark corner, so that
windows, tables and inversions all have structure to act on) plus the ``dcmj2pnm`` options that
select the same VOI as cxrkit's rules (``docs/io.md``). ``expect`` says what the comparison must
show: ``"agree"`` (within one grey level of an 8-bit display, where PS3.3 and DCMTK agree) or the
name of a documented, deliberate difference, whose own assertion lives in the test module.

Run as a script to write the films to a folder: ``python tests/io/dcmtk_cases.py OUT``; with
``--table`` it also renders them both ways and prints the table of docs/io.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SIZE = 64
DX_SOP = "1.2.840.10008.5.1.4.1.1.1.1"


def film(lo: int, hi: int) -> np.ndarray:
    """A 64x64 radiograph-like test picture with values spread over [lo, hi] (int64)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    t = (x + y) / (2 * (SIZE - 1))  # diagonal gradient, 0..1
    disc = (x - 40) ** 2 + (y - 24) ** 2 < 12**2
    t = np.where(disc, 1.0 - 0.5 * t, t)  # a bright-ish disc with its own ramp
    t = np.where((x // 4) % 4 == 0, t * 0.6, t)  # vertical bars
    t[:8, :8] = 0.0  # the darkest corner holds the exact minimum
    t[-8:, -8:] = 1.0  # and the brightest the exact maximum
    return np.rint(lo + t * (hi - lo)).astype(np.int64)


def lut_item(first: int, data: np.ndarray, bits: int, *, first_vr: str = "US", entries: int | None = None) -> Dataset:
    """A Modality or VOI LUT item; ``first`` is written as the descriptor's raw 16-bit value."""
    item = Dataset()
    n = len(data) if entries is None else entries
    item.add_new(0x00283002, first_vr, [n % 65536, first, bits])  # LUTDescriptor
    item.add_new(0x00283006, "US", [int(v) for v in data])  # LUTData
    return item


def write(
    path: Path,
    pixels: np.ndarray,
    *,
    bits_stored: int,
    signed: bool = False,
    bits_allocated: int = 16,
    garbage: int = 0,
    photometric: str = "MONOCHROME2",
    **elements: Any,
) -> Path:
    """Write ``pixels`` (values in the stored range) as an Explicit VR Little Endian DX film.

    ``garbage`` is OR-ed into the bits above BitsStored, which readers must mask off
    (PS3.5 8.1.1: bits outside Bits Stored carry no pixel value; overlays once lived there).
    """
    ds = Dataset()
    ds.SOPClassUID = DX_SOP
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    stored = pixels.astype(np.int64) & (2**bits_stored - 1)  # two's complement in bits_stored bits
    if signed:  # sign-extend, as an encoder writes signed values into the full word
        stored = np.where(pixels < 0, stored | ((2**bits_allocated - 1) ^ (2**bits_stored - 1)), stored)
    stored = stored | garbage
    dtype = {8: np.uint8, 16: np.uint16}[bits_allocated]
    ds.PixelData = stored.astype(dtype).tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dcmwrite(path, ds, enforce_file_format=True)
    return path


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]
    dcmtk: tuple[str, ...]  # dcmj2pnm options selecting the VOI cxrkit's rules choose
    expect: str = "agree"  # or the name of a documented deliberate difference
    source: str = "window"  # cxrkit's meta["window_source"] for this film
    #: Grey levels DCMTK loses before its own output rounding: it keeps rescaled values as
    #: integers (floor), where PS3.3 C.11.1 makes them real; a fractional slope shows it.
    slack: float = 0.0


def _ramp_lut(n: int, bits: int, *, decreasing: bool = False, gamma: float = 0.7) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n) ** gamma
    return np.rint((1 - t if decreasing else t) * (2**bits - 1)).astype(np.int64)


def _window(fn: str | None, c: float, w: float, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"WindowCenter": c, "WindowWidth": w, **kw}
    if fn:
        out["VOILUTFunction"] = fn
    return out


def _cases() -> list[Case]:
    u12 = film(0, 4095)
    s12 = film(-2048, 2047)
    cases: list[Case] = []

    def add(name: str, fn: Callable[[Path], Path], dcmtk: tuple[str, ...], **kw: Any) -> None:
        cases.append(Case(name, fn, dcmtk, **kw))

    # --- windows ------------------------------------------------------------------------
    add("window_linear", lambda p: write(p, u12, bits_stored=12, **_window(None, 2000, 3000)), ("+Wi", "1"))
    add("window_linear_explicit", lambda p: write(p, u12, bits_stored=12, **_window("LINEAR", 1500, 1001)), ("+Wi", "1"))
    # DCMTK 3.6.7 ignores LINEAR_EXACT (it warns and applies LINEAR). PS3.3 C.11.2.1.3 maps
    # c +- w/2 to black and white, which is LINEAR with center c + 0.5 and width w + 1.
    add("window_linear_exact", lambda p: write(p, u12, bits_stored=12, **_window("LINEAR_EXACT", 1500, 1001)),
        ("+Ww", "1500.5", "1002"))
    add("window_linear_exact_narrow", lambda p: write(  # narrow: LINEAR would differ by ~6 levels
        p, film(0, 255).astype(np.uint8), bits_stored=8, bits_allocated=8, **_window("LINEAR_EXACT", 100, 20)),
        ("+Ww", "100.5", "21"))
    add("window_sigmoid", lambda p: write(p, u12, bits_stored=12, **_window("SIGMOID", 2000, 1500)), ("+Wi", "1"))
    add("window_multiple_first_used", lambda p: write(
        p, u12, bits_stored=12, WindowCenter=[1800, 600], WindowWidth=[2500, 400]), ("+Wi", "1"))
    add("window_8bit_pixels", lambda p: write(
        p, film(0, 255).astype(np.uint8), bits_stored=8, bits_allocated=8, **_window(None, 120, 200)), ("+Wi", "1"))
    add("window_no_window_minmax", lambda p: write(p, film(300, 3500), bits_stored=12), ("+Wm",), source="minmax")
    # --- rescale (Modality LUT as slope/intercept) -----------------------------------------
    add("rescale_unsigned_ct_like", lambda p: write(
        p, u12, bits_stored=12, RescaleSlope=1, RescaleIntercept=-1024, **_window(None, 40, 2000)), ("+Wi", "1"))
    add("rescale_slope_fraction", lambda p: write(
        p, u12, bits_stored=12, RescaleSlope=0.5, RescaleIntercept=100, **_window(None, 1100, 1800)), ("+Wi", "1"),
        slack=255 / (1800 - 1))  # one modality unit through the window
    add("rescale_signed_pixels", lambda p: write(
        p, s12, bits_stored=12, signed=True, RescaleSlope=2, RescaleIntercept=50, **_window(None, 0, 6000)), ("+Wi", "1"))
    add("signed_pixels_window", lambda p: write(p, s12, bits_stored=12, signed=True, **_window(None, -100, 3000)), ("+Wi", "1"))
    add("signed_pixels_minmax", lambda p: write(p, s12, bits_stored=12, signed=True), ("+Wm",), source="minmax")
    add("signed_16bit_full_range", lambda p: write(
        p, film(-32768, 32767), bits_stored=16, signed=True, **_window(None, 0, 50000)), ("+Wi", "1"))
    # --- high bits that are not pixel --------------------------------------------------------
    add("high_bit_garbage_unsigned", lambda p: write(
        p, u12, bits_stored=12, garbage=0xA000, **_window(None, 2000, 3000)), ("+Wi", "1"))
    add("high_bit_garbage_signed", lambda p: write(
        p, s12, bits_stored=12, signed=True, garbage=0x5000, **_window(None, 0, 3500)), ("+Wi", "1"))
    # --- VOI LUT Sequence ------------------------------------------------------------------
    add("voi_lut_8bit", lambda p: write(
        p, u12, bits_stored=12, VOILUTSequence=[lut_item(0, _ramp_lut(4096, 8), 8)]), ("+Wl", "1"), source="voi_lut")
    add("voi_lut_16bit", lambda p: write(
        p, u12, bits_stored=12, VOILUTSequence=[lut_item(0, _ramp_lut(4096, 16), 16)]), ("+Wl", "1"), source="voi_lut")
    add("voi_lut_offset_clipped", lambda p: write(  # table covers 1000..2999: both ends clip
        p, u12, bits_stored=12, VOILUTSequence=[lut_item(1000, _ramp_lut(2000, 12), 12)]), ("+Wl", "1"), source="voi_lut")
    add("voi_lut_offset_8bit_decreasing", lambda p: write(
        p, u12, bits_stored=12, VOILUTSequence=[lut_item(500, _ramp_lut(3000, 8, decreasing=True), 8)]),
        ("+Wl", "1"), source="voi_lut")
    add("voi_lut_signed_pixels_negative_first", lambda p: write(  # PR 1: descriptor SS -1000
        p, s12, bits_stored=12, signed=True, VOILUTSequence=[lut_item(-1000, _ramp_lut(2500, 16), 16, first_vr="SS")]),
        ("+Wl", "1"), source="voi_lut")
    add("voi_lut_rescale_negative_first_us", lambda p: write(  # PR 0, rescale to -1024..3071, first -1024 written as US
        p, u12, bits_stored=12, RescaleSlope=1, RescaleIntercept=-1024,
        VOILUTSequence=[lut_item(65536 - 1024, _ramp_lut(4096, 16), 16)]), ("+Wl", "1"), source="voi_lut")
    add("voi_lut_rescale_negative_first_partial", lambda p: write(  # first -500 as US, table shorter than range
        p, u12, bits_stored=12, RescaleSlope=1, RescaleIntercept=-1024,
        VOILUTSequence=[lut_item(65536 - 500, _ramp_lut(2000, 12), 12)]), ("+Wl", "1"), source="voi_lut")
    add("voi_lut_signed_pixels_positive_range", lambda p: write(  # PR 1, rescale to 37768..52768: first 40000 is US
        p, film(5000, 20000), bits_stored=16, signed=True, RescaleSlope=1, RescaleIntercept=32768,
        VOILUTSequence=[lut_item(40000, _ramp_lut(10000, 16), 16)]), ("+Wl", "1"), source="voi_lut")
    add("voi_lut_before_window", lambda p: write(  # both present: the table is the first VOI
        p, u12, bits_stored=12, VOILUTSequence=[lut_item(0, _ramp_lut(4096, 12), 12)], **_window(None, 200, 300)),
        ("+Wl", "1"), source="voi_lut")
    add("voi_lut_overstated_depth", lambda p: write(  # descriptor 16 bit, data 0..4095
        p, u12, bits_stored=12, VOILUTSequence=[lut_item(0, _ramp_lut(4096, 12), 16)]),
        ("+Wl", "1"), expect="overstated_voi_lut", source="voi_lut")
    # --- Modality LUT Sequence -------------------------------------------------------------
    for bits in (8, 12, 16):
        add(f"modality_lut_{bits}bit", lambda p, b=bits: write(
            p, u12, bits_stored=12, ModalityLUTSequence=[lut_item(0, _ramp_lut(4096, b, gamma=1.4), b)]),
            ("+Wm",), source="minmax")
    add("modality_lut_12bit_offset_window", lambda p: write(
        p, u12, bits_stored=12, ModalityLUTSequence=[lut_item(500, _ramp_lut(3000, 12, gamma=1.4), 12)],
        **_window(None, 1500, 2500)), ("+Wi", "1"))
    add("modality_lut_signed_pixels", lambda p: write(
        p, s12, bits_stored=12, signed=True,
        ModalityLUTSequence=[lut_item(-2048, _ramp_lut(4096, 16, gamma=1.4), 16, first_vr="SS")]),
        ("+Wm",), source="minmax")
    add("modality_lut_then_voi_lut", lambda p: write(
        p, u12, bits_stored=12, ModalityLUTSequence=[lut_item(0, _ramp_lut(4096, 12, gamma=1.4), 12)],
        VOILUTSequence=[lut_item(0, _ramp_lut(4096, 8), 8)]), ("+Wl", "1"), source="voi_lut")
    # --- photometric interpretation and Presentation LUT Shape -------------------------------
    add("monochrome1_window", lambda p: write(
        p, u12, bits_stored=12, photometric="MONOCHROME1", **_window(None, 2000, 3000)), ("+Wi", "1"))
    add("monochrome1_no_shape_minmax", lambda p: write(p, u12, bits_stored=12, photometric="MONOCHROME1"),
        ("+Wm",), source="minmax")
    add("monochrome1_inverse", lambda p: write(
        p, u12, bits_stored=12, photometric="MONOCHROME1", PresentationLUTShape="INVERSE",
        **_window(None, 2000, 3000)), ("+Wi", "1"))
    add("monochrome2_identity", lambda p: write(
        p, u12, bits_stored=12, PresentationLUTShape="IDENTITY", **_window(None, 2000, 3000)), ("+Wi", "1"))
    add("monochrome2_inverse", lambda p: write(
        p, u12, bits_stored=12, PresentationLUTShape="INVERSE", **_window(None, 2000, 3000)), ("+Wi", "1"))
    add("monochrome1_voi_lut", lambda p: write(
        p, u12, bits_stored=12, photometric="MONOCHROME1", VOILUTSequence=[lut_item(0, _ramp_lut(4096, 12), 12)]),
        ("+Wl", "1"), source="voi_lut")
    add("monochrome1_identity", lambda p: write(
        p, u12, bits_stored=12, photometric="MONOCHROME1", PresentationLUTShape="IDENTITY",
        **_window(None, 2000, 3000)), ("+Wi", "1"), expect="monochrome1_identity")
    # --- windows cxrkit declines ----------------------------------------------------------------
    add("window_covering_no_pixels", lambda p: write(
        p, film(0, 1000), bits_stored=12, **_window(None, 3500, 200)), ("+Wi", "1"), expect="window_outside",
        source="minmax")
    return cases


CASES = _cases()


#: The DCMTK options that express cxrkit's documented choice, for the deliberate differences
#: (added to the case's options; ``+Wm`` replaces the window).
CXRKIT_EQUIVALENT = {"overstated_voi_lut": ("+Mv",), "window_outside": ("+Wm",), "monochrome1_identity": ("+P",)}


def equivalent_options(case: Case) -> tuple[str, ...]:
    extra = CXRKIT_EQUIVALENT[case.expect]
    return extra if extra == ("+Wm",) else case.dcmtk + extra


def render_dcmtk(path: Path, options: tuple[str, ...], depth: int = 8) -> np.ndarray:
    """``dcmj2pnm``'s rendering of ``path`` as an 8- or 16-bit PNG, read back as float64."""
    import subprocess

    import cv2

    out = path.with_name(f"{path.stem}-dcmtk{depth}-{'_'.join(options).replace('+', 'p')}.png")
    done = subprocess.run(
        ["dcmj2pnm", *options, "+on" if depth == 8 else "+on2", str(path), str(out)],
        capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dcmj2pnm failed on {path.name}: {done.stderr.strip()}")
    pixels = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert pixels is not None and pixels.dtype == (np.uint8 if depth == 8 else np.uint16)
    return pixels.astype(np.float64)


def render_cxrkit(path: Path, depth: int = 8) -> tuple[np.ndarray, dict[str, Any]]:
    """``read_image``'s pixels on the same scale (x (2**depth - 1) / maxval), and its metadata."""
    from cxrkit.io import read_image

    image = read_image(path)
    return image.pixels.astype(np.float64) * ((2**depth - 1) / image.maxval), image.meta


def table(folder: Path) -> list[tuple[str, str, float, float, str]]:
    """(case, DCMTK options, max |difference| in 8-bit and in 16-bit levels, verdict) per case."""
    rows = []
    for case in CASES:
        path = case.make(folder / f"{case.name}.dcm")
        runs = [(case.dcmtk, "")]
        if case.expect != "agree":
            runs.append((equivalent_options(case), "agree: cxrkit's documented choice"))
        for options, verdict in runs:
            diffs = [float(np.abs(render_cxrkit(path, d)[0] - render_dcmtk(path, options, d)).max()) for d in (8, 16)]
            if not verdict:
                verdict = f"deliberate difference ({case.expect})" if case.expect != "agree" else "agree"
                if case.slack:
                    verdict = f"agree within 1 + {case.slack:.2f} (DCMTK floors fractional rescaled values)"
            rows.append((case.name, " ".join(options), diffs[0], diffs[1], verdict))
    return rows


def main(argv: list[str]) -> None:
    folder = Path(argv[-1])
    folder.mkdir(parents=True, exist_ok=True)
    if "--table" in argv:
        print("| case | DCMTK options | max abs diff, 8-bit levels | max abs diff, 16-bit levels | verdict |")
        print("|---|---|---|---|---|")
        for name, options, diff8, diff16, verdict in table(folder):
            print(f"| `{name}` | `{options}` | {diff8:.3f} | {diff16:.2f} | {verdict} |")
        return
    for case in CASES:
        case.make(folder / f"{case.name}.dcm")
        print(case.name, " ".join(case.dcmtk), case.expect)


if __name__ == "__main__":
    main(sys.argv[1:])
