"""Fuzzing harness for ``cxrkit.io.read_image``: seeds, mutations, an isolated worker, the contract.

Used by ``tests/io/test_fuzz_readers.py`` (a CI-sized run driven by Hypothesis with a fixed
seed) and ``benchmarks/fuzz_readers.py`` (a long run a user leaves going). Both draw cases
from the same mutation table, so a case found by one reproduces in the other.

**The contract** (issue #12). For every input, ``read_image`` either returns a finite 2-D
array in ``[0, maxval]`` with ``maxval = 2**k - 1`` (1 <= k <= 32) and metadata that matches
the array, or raises ``UnreadableImage`` (or a subclass) whose message names the file, is one
line and carries no patient identifier. Anything else is a *violation*: another exception
type, NaN/inf pixels, a read slower than the timeout (a hang), a dead interpreter (a crash)
or memory beyond the bound (``MemoryError`` under ``RLIMIT_AS``).

**Why a worker process.** A segfault in a C decoder or an infinite loop inside one cannot be
caught in-process (``signal.alarm`` never interrupts C code that does not return to Python).
Each case is sent to a long-lived worker over a pipe; the parent waits at most ``timeout``
seconds, kills and restarts the worker on a hang, and reads a crash from its exit status.
The worker runs under ``RLIMIT_AS`` so a decoder that tries to allocate without limit fails
instead of taking the machine down.

**Mutations** are data, not code paths: a case is ``(seed name, ((op, *params), ...))``,
each op declares its parameter domains, and ``random_case`` (plain ``random``) and
``case_strategy`` (Hypothesis, which shrinks failures) draw from the same domains.
Ops are generic (bit flips, truncation, insertion, splicing) or structure-aware: DICOM
header fields edited through pydicom (BitsStored > BitsAllocated, zero/negative rows,
window width 0, RescaleSlope 0/NaN, wrong transfer syntax, short PixelData, odd-length
values, MONOCHROME1 with an empty VOI LUT Sequence, palette colour, frame counts, ...),
PNG chunks with their CRCs recomputed (so the file gets past the container check and into
libpng), JPEG frame headers and entropy-coded data, TIFF IFD entries, BMP headers. Bomb shapes
(``tests/io/bombs.py`` has the large ones): a deflated dataset with up to 300 MiB of zeros
appended, a DICOM codestream's frame header enlarged, zero-height, three-component or tiled
1x1, and a JPEG's last scan repeated up to 1000 times.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEED_DIR = HERE / "fuzz_seeds"
EXAMPLES = REPO / "examples"
SHARED = Path(os.environ.get("CXRKIT_SHARED_DATA", REPO.parent / "shared" / "data"))

#: Fake identifiers written into every DICOM seed: no error message may ever contain them.
PHI_MARKERS = ("FUZZ^SECRET", "PID-FUZZ-0001", "19700101")

DEFAULT_TIMEOUT = 10.0  # seconds per case: the definition of a hang
DEFAULT_MEMORY = 4 << 30  # bytes of address space per worker (a 50-megapixel read fits many times over)

Case = tuple[str, tuple[tuple[Any, ...], ...]]
#: Outcomes counted by the CI fuzz tests in this process (printed in pytest's summary).
TALLY: Counter[str] = Counter()


# =============================================================================================
# Seeds
# =============================================================================================

def _pixels(shape: tuple[int, int], top: int, dtype: str) -> Any:
    """A gradient with texture: every seed has a real range, not a constant."""
    import numpy as np

    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    values = (x * 37 + y * 101 + (x * y) % 13 * 17) % (top + 1)
    return values.astype(dtype)


def _dicom(ts: str, arr: Any, *, frame: bytes | None = None, bits_stored: int | None = None,
           photometric: str = "MONOCHROME2", preamble: bool = True, implicit: bool = False,
           **elements: Any) -> bytes:
    """A small single-frame DICOM carrying fake identifiers (``PHI_MARKERS``)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Modality = "DX"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI_MARKERS
    ds.PatientAge, ds.PatientSex, ds.ViewPosition = "061Y", "F", "PA"
    ds.PixelSpacing = [0.14, 0.14]
    ds.Rows, ds.Columns = (int(v) for v in arr.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    for key, value in elements.items():
        setattr(ds, key, value)
    if frame is not None:
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        big = ts == "1.2.840.10008.1.2.2"
        ds.PixelData = arr.astype(arr.dtype.newbyteorder(">" if big else "<")).tobytes()
        ds["PixelData"].VR = "OW" if arr.dtype.itemsize > 1 else "OB"
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if preamble:
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.file_meta.TransferSyntaxUID = ts
            ds.preamble = b"\0" * 128
            pydicom.dcmwrite(out, ds, enforce_file_format=True)
        else:
            pydicom.dcmwrite(out, ds, implicit_vr=implicit, little_endian=True)
    return out.getvalue()


def make_seeds() -> dict[str, bytes]:
    """Generate the committed seeds (``tests/io/fuzz_seeds``): one tiny file per encoding path.

    Tiny (at most 32 x 24 pixels) so that thousands of mutations decode in a CI minute; one
    per transfer syntax and raster layout so that every decoder is reached. Run
    ``python benchmarks/fuzz_readers.py --write-seeds`` to regenerate; the committed bytes,
    not this function, are what the tests read (codec upgrades must not move the seeds).
    """
    import cv2
    import imagecodecs
    import numpy as np
    from PIL import Image
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DcmSequence

    seeds: dict[str, bytes] = {}
    shape = (16, 24)
    u12 = _pixels(shape, 4095, "uint16")
    u16 = (_pixels(shape, 4095, "uint16") * 16 + 15).astype(np.uint16)  # spans 15..65535
    u8 = _pixels(shape, 255, "uint8")
    s16 = (u12.astype(np.int32) - 2048).astype(np.int16)
    LE, BE, IMPL = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"

    seeds["dcm_u16_12bit_window.dcm"] = _dicom(LE, u12, bits_stored=12, WindowCenter=2048, WindowWidth=3000,
                                               RescaleSlope=1, RescaleIntercept=0)
    voi = Dataset()
    voi.LUTDescriptor = [4096, 0, 12]
    voi.LUTData = [int(v) for v in (4095 - np.arange(4096)) // 1]  # a decreasing LUT
    voi["LUTData"].VR = "US"
    seeds["dcm_mono1_voilut.dcm"] = _dicom(LE, u12, bits_stored=12, photometric="MONOCHROME1",
                                           VOILUTSequence=DcmSequence([voi]))
    seeds["dcm_signed_rescale.dcm"] = _dicom(LE, s16, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1024,
                                             WindowCenter=0, WindowWidth=4000)
    seeds["dcm_u8_minmax.dcm"] = _dicom(LE, u8)
    seeds["dcm_implicit_no_preamble.dcm"] = _dicom(IMPL, u12, bits_stored=12, preamble=False, implicit=True)
    seeds["dcm_big_endian.dcm"] = _dicom(BE, u12, bits_stored=12)
    seeds["dcm_deflated.dcm"] = _dicom("1.2.840.10008.1.2.1.99", u12, bits_stored=12)
    mlut = Dataset()
    mlut.LUTDescriptor = [4096, 0, 16]
    mlut.ModalityLUTType = "HU"
    mlut.LUTData = [int(v) for v in np.arange(4096) * 3]
    mlut["LUTData"].VR = "US"
    seeds["dcm_modality_lut_seq.dcm"] = _dicom(LE, u12, bits_stored=12, ModalityLUTSequence=DcmSequence([mlut]))
    seeds["dcm_sigmoid.dcm"] = _dicom(LE, u12, bits_stored=12, WindowCenter=2000, WindowWidth=1500,
                                      VOILUTFunction="SIGMOID")
    seeds["dcm_mono1_inverse.dcm"] = _dicom(LE, u12, bits_stored=12, photometric="MONOCHROME1",
                                            PresentationLUTShape="INVERSE")
    seeds["dcm_multiframe_1.dcm"] = _dicom(LE, u12, bits_stored=12, NumberOfFrames=1)
    seeds["dcm_1x1.dcm"] = _dicom(LE, u12[:1, :1], bits_stored=12)
    top = u16.copy()
    top[::2] = 65535  # the largest 16-bit value on every other row
    seeds["dcm_65535.dcm"] = _dicom(LE, top)

    # Compressed transfer syntaxes: one small frame each, encoded with imagecodecs.
    seeds["dcm_rle.dcm"] = _dicom("1.2.840.10008.1.2.5", u12, bits_stored=12, frame=_rle_frame(u12))
    seeds["dcm_jpeg_baseline.dcm"] = _dicom("1.2.840.10008.1.2.4.50", u8,
                                            frame=imagecodecs.jpeg8_encode(u8, level=90))
    seeds["dcm_jpeg_ext12.dcm"] = _dicom("1.2.840.10008.1.2.4.51", u12, bits_stored=12,
                                         frame=imagecodecs.jpeg8_encode(u12, level=90, bitspersample=12))
    seeds["dcm_jpeg_lossless.dcm"] = _dicom("1.2.840.10008.1.2.4.70", u12, bits_stored=12,
                                            frame=imagecodecs.ljpeg_encode(u12, bitspersample=12))
    seeds["dcm_jpegls.dcm"] = _dicom("1.2.840.10008.1.2.4.80", u12, bits_stored=12,
                                     frame=imagecodecs.jpegls_encode(u12))
    seeds["dcm_j2k_lossless.dcm"] = _dicom("1.2.840.10008.1.2.4.90", u16,
                                           frame=imagecodecs.jpeg2k_encode(u16, level=0, codecformat="J2K"))
    seeds["dcm_j2k_mono1.dcm"] = _dicom("1.2.840.10008.1.2.4.91", u12, bits_stored=12, photometric="MONOCHROME1",
                                        frame=imagecodecs.jpeg2k_encode(u12, level=40, codecformat="J2K",
                                                                        bitspersample=12))

    # Rasters, written by the libraries users' files come from (OpenCV, Pillow).
    def cv(ext: str, arr: Any, params: Sequence[int] = ()) -> bytes:
        ok, buf = cv2.imencode(ext, arr, list(params))
        assert ok, ext
        return buf.tobytes()

    def pil(arr: Any, fmt: str, mode: str | None = None, **kw: Any) -> bytes:
        out = io.BytesIO()
        (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(out, fmt, **kw)
        return out.getvalue()

    rgb = np.stack([u8, u8[::-1], (u8 // 2 + 7).astype(np.uint8)], axis=-1)
    rgba = np.concatenate([rgb, np.full(shape + (1,), 200, np.uint8)], axis=-1)
    seeds["png_gray8.png"] = cv(".png", u8)
    seeds["png_gray16.png"] = cv(".png", u16)
    seeds["png_rgb8.png"] = cv(".png", rgb)
    seeds["png_rgba8.png"] = cv(".png", rgba)
    seeds["png_gray_alpha.png"] = pil(np.stack([u8, u8], axis=-1), "PNG", "LA")
    palette = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(palette, "PNG")
    seeds["png_palette.png"] = palette.getvalue()
    seeds["png_interlaced.png"] = _adam7_png(u8)
    seeds["png_1bit.png"] = pil((u8 > 127), "PNG", "1")
    seeds["jpg_gray.jpg"] = cv(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, 90])
    seeds["jpg_rgb.jpg"] = cv(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
    seeds["jpg_progressive.jpg"] = cv(".jpg", u8, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    seeds["tif_gray8_raw.tif"] = pil(u8, "TIFF", "L")
    seeds["tif_gray16_lzw.tif"] = cv(".tif", u16)
    seeds["tif_rgb_deflate.tif"] = pil(rgb, "TIFF", "RGB", compression="tiff_adobe_deflate")
    seeds["tif_gray8_packbits.tif"] = pil(u8, "TIFF", "L", compression="packbits")
    seeds["tif_gray16_bigendian.tif"] = _tiff_be16(u16)
    seeds["bmp_gray8.bmp"] = cv(".bmp", u8)
    seeds["bmp_rgb24.bmp"] = cv(".bmp", rgb)
    return seeds


def _rle_frame(arr: Any) -> bytes:
    """One RLE Lossless frame, encoded by pydicom's own encoder."""
    from pydicom.pixels import get_encoder

    return get_encoder("1.2.840.10008.1.2.5").encode(
        arr, rows=arr.shape[0], columns=arr.shape[1], samples_per_pixel=1, number_of_frames=1,
        bits_allocated=16, bits_stored=12, pixel_representation=0, photometric_interpretation="MONOCHROME2",
        encoding_plugin="pydicom")


def _tiff_be16(arr: Any) -> bytes:
    """A minimal big-endian ("MM") 16-bit uncompressed TIFF, one strip (no library writes these by default)."""
    h, w = arr.shape
    pixels = arr.astype(">u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 16), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, h), (279, 4, 1, len(pixels))]
    ifd_at = 8 + len(pixels)
    out = b"MM\x00\x2a" + struct.pack(">I", ifd_at) + pixels + struct.pack(">H", len(entries))
    for tag, typ, count, value in entries:
        packed = struct.pack(">HH", value, 0) if typ == 3 else struct.pack(">I", value)
        out += struct.pack(">HHI", tag, typ, count) + packed
    return out + struct.pack(">I", 0)


def _png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def _adam7_png(arr: Any) -> bytes:
    """An interlaced (Adam7) 8-bit grey PNG: OpenCV and Pillow write only non-interlaced files."""
    h, w = arr.shape
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))


def load_seeds(*, committed: bool = True, examples: bool = False, shared: bool = False,
               max_bytes: int | None = None) -> dict[str, bytes]:
    """Seed files by name: the committed tiny seeds, ``examples/``, ``../shared/data/dicom``."""
    paths: list[Path] = []
    if committed:
        paths += sorted(p for p in SEED_DIR.iterdir() if p.is_file() and p.suffix != ".md")
    if examples:
        paths += sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".png", ".dcm"))
    if shared and (SHARED / "dicom").is_dir():
        paths += sorted((SHARED / "dicom").iterdir())
    seeds = {}
    for p in paths:
        if max_bytes is None or p.stat().st_size <= max_bytes:
            seeds[p.name] = p.read_bytes()
    return seeds


def seed_kind(data: bytes) -> str:
    """'dicom', 'png', 'jpeg', 'tiff', 'bmp' or 'other' by content (the reader's own rule)."""
    from cxrkit.io import detect_format

    return detect_format(data) or "other"


# =============================================================================================
# Parameter domains (shared by random and Hypothesis generation)
# =============================================================================================

@dataclass(frozen=True)
class Int:
    lo: int
    hi: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.lo, self.hi)

    def strategy(self) -> Any:
        from hypothesis import strategies as st

        return st.integers(self.lo, self.hi)


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def draw(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def strategy(self) -> Any:
        from hypothesis import strategies as st

        return st.sampled_from(self.values)


POS = Int(0, 1 << 24)  # taken modulo the length of the data
HEAD = Int(0, 1023)  # positions in the first KiB, where every header lives
INTERESTING = (0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 4095, 4096,
               32767, 32768, 65535, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@dataclass(frozen=True)
class Op:
    name: str
    kinds: frozenset[str]  # seed kinds it applies to
    params: tuple[Int | Choice, ...]
    fn: Callable[..., bytes]
    weight: int = 1


OPS: dict[str, Op] = {}
ANY = frozenset({"dicom", "png", "jpeg", "tiff", "bmp", "other"})


def op(name: str, kinds: frozenset[str] | str, *params: Int | Choice, weight: int = 1):
    kinds = frozenset({kinds}) if isinstance(kinds, str) else kinds

    def register(fn: Callable[..., bytes]) -> Callable[..., bytes]:
        OPS[name] = Op(name, kinds, params, fn, weight)
        return fn

    return register


# =============================================================================================
# Generic byte mutations
# =============================================================================================

@op("flip", ANY, POS, Int(0, 7), weight=3)
def _flip(data: bytes, pos: int, bit: int) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    b[pos % len(b)] ^= 1 << bit
    return bytes(b)


@op("flip_head", ANY, HEAD, Int(0, 7), weight=3)
def _flip_head(data: bytes, pos: int, bit: int) -> bytes:
    return _flip(data, pos % max(1, min(len(data), 1024)), bit)


@op("set_word", ANY, HEAD, Choice(INTERESTING), Choice((1, 2, 4)), Choice(("<", ">")), weight=2)
def _set_word(data: bytes, pos: int, value: int, size: int, order: str) -> bytes:
    if len(data) < size:
        return data
    pos %= len(data) - size + 1
    packed = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little" if order == "<" else "big")
    return data[:pos] + packed + data[pos + size:]


@op("truncate", ANY, POS, weight=2)
def _truncate(data: bytes, pos: int) -> bytes:
    return data[: pos % max(1, len(data))]


@op("delete", ANY, POS, Int(1, 64))
def _delete(data: bytes, pos: int, n: int) -> bytes:
    pos %= max(1, len(data))
    return data[:pos] + data[pos + n:]


@op("insert", ANY, POS, Choice((b"\x00", b"\xff", b"\xff\xd9", b"\x00\x00\x00\x00", b"\xfe\xff\x00\xe0",
                                 b"IEND", b"DICM", b"\x7f" * 16)), Int(1, 8))
def _insert(data: bytes, pos: int, chunk: bytes, times: int) -> bytes:
    pos %= len(data) + 1
    return data[:pos] + chunk * times + data[pos:]


@op("duplicate", ANY, POS, Int(1, 256))
def _duplicate(data: bytes, pos: int, n: int) -> bytes:
    pos %= max(1, len(data))
    return data[:pos + n] + data[pos:pos + n] + data[pos + n:]


@op("random_bytes", ANY, POS, Int(1, 32), Int(0, 1 << 30))
def _random_bytes(data: bytes, pos: int, n: int, seed: int) -> bytes:
    if not data:
        return data
    pos %= len(data)
    noise = random.Random(seed).randbytes(n)
    return data[:pos] + noise + data[pos + n:]


# =============================================================================================
# DICOM: header fields through pydicom, and raw element edits
# =============================================================================================

def _dcm_roundtrip(data: bytes, edit: Callable[[Any], None]) -> bytes:
    """Parse, edit, write back (keeping the preamble and encoding); unchanged if pydicom cannot."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            edit(ds)
            out = io.BytesIO()
            implicit, little = getattr(ds, "original_encoding", (None, None))
            if getattr(ds, "file_meta", None) is not None and "TransferSyntaxUID" in ds.file_meta:
                pydicom.dcmwrite(out, ds, enforce_file_format=False)
            else:
                pydicom.dcmwrite(out, ds, implicit_vr=bool(implicit), little_endian=little is not False)
            return out.getvalue()
    except Exception:
        return data


def _relative(current: Any, token: Any) -> Any:
    try:
        cur = int(current)
    except (TypeError, ValueError):
        cur = 16
    return {"+1": cur + 1, "-1": cur - 1, "+8": cur + 8, "x2": cur * 2, "/2": cur // 2}.get(token, token)


# field -> (VR used when the value needs another VR, values). "del" removes the element,
# "neg" writes -1 as a signed VR (a negative size, which a US element cannot hold).
DICOM_FIELDS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "Rows": ("SS", (0, 1, 2, 3, 65535, 32768, "+1", "-1", "x2", "/2", "neg", "del")),
    "Columns": ("SS", (0, 1, 2, 65535, 32768, "+1", "-1", "x2", "/2", "neg", "del")),
    "BitsAllocated": ("SS", (0, 1, 7, 8, 12, 16, 24, 32, 64, 255, 65535, "neg", "del")),
    "BitsStored": ("SS", (0, 1, 2, 7, 8, 12, 15, 16, 17, 24, 32, 33, 64, 65535, "+1", "+8", "neg", "del")),
    "HighBit": ("SS", (0, 7, 11, 15, 16, 31, 255, "del")),
    "PixelRepresentation": ("SS", (0, 1, 2, 255, "del")),
    "SamplesPerPixel": ("SS", (0, 1, 2, 3, 4, "del")),
    "PlanarConfiguration": ("SS", (0, 1, 2)),
    "PhotometricInterpretation": ("CS", ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL",
                                         "YBR_FULL_422", "MONOCHROME3", "", "del")),
    "NumberOfFrames": ("IS", ("1", "0", "-1", "2", "", "abc", "999999", "1.5", "del")),
    "WindowCenter": ("DS", (0, -1, 1e38, -1e38, "NaN", "inf", "-inf", "abc", [100, 200], "", "del")),
    "WindowWidth": ("DS", (0, 1, -1, 0.5, 1e-30, 1e38, "NaN", "inf", "-inf", "abc", [1, 2], "", "del")),
    "VOILUTFunction": ("CS", ("LINEAR", "LINEAR_EXACT", "SIGMOID", "FOO", "", "del")),
    "RescaleSlope": ("DS", (0, -1, 1e-30, 1e30, 1e300, "NaN", "inf", "-inf", "abc", "", "del")),
    "RescaleIntercept": ("DS", (0, -1e30, 1e30, 1e300, "NaN", "inf", "-inf", "abc", "", "del")),
    "PresentationLUTShape": ("CS", ("INVERSE", "IDENTITY", "FOO", "", "del")),
    "Modality": ("CS", ("CT", "CR", "DX", "OT", "MG", "", "xx", "del")),
    "PixelSpacing": ("DS", ("0\\0", "-1\\1", "NaN\\NaN", "inf\\1", "a", "1", "del")),
    "PatientAge": ("AS", ("999Y", "abc", "", "-01Y", "000D", "del")),
    "ViewPosition": ("CS", ("", "AP", "LATERAL ", "del")),
}


def _set_field(ds: Any, keyword: str, vr: str, value: Any) -> None:
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import DataElement

    tag = tag_for_keyword(keyword)
    if value == "del":
        if tag in ds:
            del ds[tag]
        return
    value = _relative(ds.get(keyword), value)
    if value == "neg":
        ds[tag] = DataElement(tag, "SS", -1)
    elif isinstance(value, int) and not 0 <= value <= 65535 and vr == "SS":
        ds[tag] = DataElement(tag, "SL", value)
    elif isinstance(value, int) and vr == "SS":
        ds[tag] = DataElement(tag, "US", value)
    elif vr == "DS":
        text = value if isinstance(value, str) else "\\".join(repr(float(v)) for v in (
            value if isinstance(value, list) else [value]))
        ds[tag] = DataElement(tag, "LO", text)  # LO: pydicom writes any text; a reader sees the bytes
    else:
        ds[tag] = DataElement(tag, vr, value)


for _keyword, (_vr, _values) in DICOM_FIELDS.items():
    def _make(keyword: str = _keyword, vr: str = _vr) -> Callable[[bytes, Any], bytes]:
        def mutate(data: bytes, value: Any) -> bytes:
            return _dcm_roundtrip(data, lambda ds: _set_field(ds, keyword, vr, value))
        return mutate

    OPS[f"dcm.{_keyword}"] = Op(f"dcm.{_keyword}", frozenset({"dicom"}), (Choice(_values),), _make(), weight=2)


@op("dcm.bits_stored_over_allocated", "dicom", Int(1, 40), weight=2)
def _bits_over(data: bytes, extra: int) -> bytes:
    def edit(ds: Any) -> None:
        ds.BitsStored = int(ds.get("BitsAllocated", 16) or 16) + extra
        ds.HighBit = min(65535, ds.BitsStored - 1)
    return _dcm_roundtrip(data, edit)


@op("dcm.pixeldata", "dicom", Choice(("cut1", "cut2", "half", "empty", "append1", "append_many", "double")),
    weight=3)
def _pixeldata(data: bytes, how: str) -> bytes:
    def edit(ds: Any) -> None:
        pd = bytes(ds.PixelData)
        ds.PixelData = {"cut1": pd[:-1], "cut2": pd[:-2], "half": pd[: len(pd) // 2], "empty": b"",
                        "append1": pd + b"\x00", "append_many": pd + b"\x01" * 4096, "double": pd + pd}[how]
        if ds["PixelData"].is_undefined_length and how in ("cut1", "cut2", "half", "empty"):
            ds["PixelData"].is_undefined_length = how != "empty"
    return _dcm_roundtrip(data, edit)


@op("dcm.voilut", "dicom", Choice(("empty", "mono1_empty", "no_descriptor", "descriptor_zero", "bits0", "bits64",
                                   "lutdata_empty", "lutdata_short", "first_huge", "two_items", "lutdata_bytes_odd",
                                   "descriptor_one_value")), weight=2)
def _voilut(data: bytes, how: str) -> bytes:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DcmSequence

    def edit(ds: Any) -> None:
        if how in ("empty", "mono1_empty"):
            ds.VOILUTSequence = DcmSequence([])
            if how == "mono1_empty":
                ds.PhotometricInterpretation = "MONOCHROME1"
            return
        item = Dataset()
        item.LUTDescriptor = [256, 0, 8]
        item["LUTDescriptor"].VR = "US"
        item.LUTData = list(range(256))
        item["LUTData"].VR = "US"
        if how == "no_descriptor":
            del item.LUTDescriptor
        elif how == "descriptor_zero":
            item.LUTDescriptor = [0, 0, 0]
        elif how == "bits0":
            item.LUTDescriptor = [256, 0, 0]
        elif how == "bits64":
            item.LUTDescriptor = [256, 0, 64]
        elif how == "lutdata_empty":
            item.LUTData = b""
            item["LUTData"].VR = "OW"
        elif how == "lutdata_short":
            item.LUTData = [1, 2, 3]
        elif how == "first_huge":
            item.LUTDescriptor = [256, 65535, 8]
        elif how == "lutdata_bytes_odd":
            item.LUTData = b"\x01\x02\x03"
            item["LUTData"].VR = "OB"
        elif how == "descriptor_one_value":
            item.LUTDescriptor = 256
        ds.VOILUTSequence = DcmSequence([item, item] if how == "two_items" else [item])
    return _dcm_roundtrip(data, edit)


@op("dcm.modality_lut", "dicom", Choice(("empty", "no_descriptor", "descriptor_zero", "lutdata_empty",
                                         "lutdata_short", "bits0", "first_huge")))
def _modality_lut(data: bytes, how: str) -> bytes:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DcmSequence

    def edit(ds: Any) -> None:
        if how == "empty":
            ds.ModalityLUTSequence = DcmSequence([])
            return
        item = Dataset()
        item.LUTDescriptor = [256, 0, 16]
        item.ModalityLUTType = "US"
        item.LUTData = list(range(0, 512, 2))
        item["LUTData"].VR = "US"
        if how == "no_descriptor":
            del item.LUTDescriptor
        elif how == "descriptor_zero":
            item.LUTDescriptor = [0, 0, 0]
        elif how == "lutdata_empty":
            item.LUTData = b""
            item["LUTData"].VR = "OW"
        elif how == "lutdata_short":
            item.LUTData = [5]
        elif how == "bits0":
            item.LUTDescriptor = [256, 0, 0]
        elif how == "first_huge":
            item.LUTDescriptor = [256, 65000, 16]
        ds.ModalityLUTSequence = DcmSequence([item])
    return _dcm_roundtrip(data, edit)


@op("dcm.palette", "dicom", Choice(("valid", "no_lut", "short_lut", "bits0")))
def _palette(data: bytes, how: str) -> bytes:
    def edit(ds: Any) -> None:
        ds.PhotometricInterpretation = "PALETTE COLOR"
        if how == "no_lut":
            return
        bits = 0 if how == "bits0" else 16
        for colour in ("Red", "Green", "Blue"):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, bits])
            ds[f"{colour}PaletteColorLookupTableDescriptor"].VR = "US"  # ambiguous 'US or SS' won't write
            setattr(ds, f"{colour}PaletteColorLookupTableData", b"\x00\x01" * (3 if how == "short_lut" else 256))
    return _dcm_roundtrip(data, edit)


@op("dcm.one_pixel", "dicom", Choice(("1x1", "1xN", "Nx1")), weight=2)
def _one_pixel(data: bytes, how: str) -> bytes:
    def edit(ds: Any) -> None:
        rows, cols = int(ds.Rows), int(ds.Columns)
        r, c = {"1x1": (1, 1), "1xN": (1, cols), "Nx1": (rows, 1)}[how]
        if not ds["PixelData"].is_undefined_length:  # native: keep exactly the pixels described
            import numpy as np

            itemsize = max(1, int(ds.BitsAllocated) // 8)
            arr = np.frombuffer(bytes(ds.PixelData)[: rows * cols * itemsize], f"u{itemsize}").reshape(rows, cols)
            ds.PixelData = arr[:r, :c].tobytes() + (b"\x00" if (r * c * itemsize) % 2 else b"")
        ds.Rows, ds.Columns = r, c
    return _dcm_roundtrip(data, edit)


@op("dcm.fill", "dicom", Choice((0, 1, 255, 4095, 4096, 32767, 32768, 65535)), weight=2)
def _fill(data: bytes, value: int) -> bytes:
    """Every stored value the same (a constant film), or above 2**BitsStored - 1 (set high bits)."""
    def edit(ds: Any) -> None:
        if ds["PixelData"].is_undefined_length:
            return
        itemsize = max(1, int(ds.BitsAllocated) // 8)
        n = len(bytes(ds.PixelData)) // itemsize
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        ds.PixelData = (value & ((1 << 8 * itemsize) - 1)).to_bytes(itemsize, "little" if little else "big") * n
    return _dcm_roundtrip(data, edit)


@op("dcm.frames", "dicom", Choice((1, 2, 3)), Choice(("data", "no_data")))
def _frames(data: bytes, n: int, how: str) -> bytes:
    def edit(ds: Any) -> None:
        ds.NumberOfFrames = n
        if how == "data" and not ds["PixelData"].is_undefined_length:
            ds.PixelData = bytes(ds.PixelData) * n
    return _dcm_roundtrip(data, edit)


@op("dcm.float_pixels", "dicom", Choice(("float", "double", "both")))
def _float_pixels(data: bytes, how: str) -> bytes:
    def edit(ds: Any) -> None:
        pd = bytes(ds.PixelData)
        if how in ("float", "double"):
            del ds.PixelData
        if how in ("float", "both"):
            ds.FloatPixelData = pd[: len(pd) // 4 * 4]
        if how == "double":
            ds.DoubleFloatPixelData = pd[: len(pd) // 8 * 8]
    return _dcm_roundtrip(data, edit)


@op("dcm.fragments", "dicom", Choice(("bot_garbage", "split", "no_fragment", "empty_fragment", "extra_frame")))
def _fragments(data: bytes, how: str) -> bytes:
    """Encapsulated pixel data with a broken item structure (compressed seeds only)."""
    from pydicom.encaps import encapsulate, generate_frames

    def edit(ds: Any) -> None:
        if not ds["PixelData"].is_undefined_length:
            return
        frames = list(generate_frames(ds.PixelData, number_of_frames=1))
        frame = frames[0]
        if how == "bot_garbage":
            raw = bytes(ds.PixelData)
            ds.PixelData = raw[:4] + struct.pack("<I", 4) + struct.pack("<I", 0xFFFFFF) + raw[8:]
        elif how == "split":
            half = len(frame) // 2 & ~1
            ds.PixelData = encapsulate([frame[:half]], has_bot=False) + encapsulate([frame[half:]])[8:]
        elif how == "no_fragment":
            ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
        elif how == "empty_fragment":
            ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\x00\xe0\x00\x00\x00\x00"
        elif how == "extra_frame":
            ds.PixelData = encapsulate([frame, frame])
    return _dcm_roundtrip(data, edit)


def _find_element(data: bytes, group: int, element: int, start: int = 0) -> tuple[int, int, int] | None:
    """Locate a little-endian element: (offset of the tag, offset of the length field, length size)."""
    tag = struct.pack("<HH", group, element)
    pos = data.find(tag, start)
    while pos >= 0:
        vr = data[pos + 4: pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UN", b"UT", b"UC", b"UR", b"SV", b"UV"):
            return pos, pos + 8, 4
        if vr.isalpha() and vr.isupper():
            return pos, pos + 6, 2
        if len(data) >= pos + 8:
            return pos, pos + 4, 4  # implicit VR
        pos = data.find(tag, pos + 1)
    return None


ODD_TAGS = ((0x0002, 0x0010), (0x0008, 0x0060), (0x0010, 0x0010), (0x0010, 0x0020), (0x0028, 0x0004),
            (0x0028, 0x0010), (0x0028, 0x0011), (0x0028, 0x0100), (0x0028, 0x0101), (0x0028, 0x0030),
            (0x0028, 0x1050), (0x0028, 0x1051), (0x0028, 0x1053), (0x0028, 0x3010), (0x7FE0, 0x0010))


@op("dcm.length", "dicom", Choice(ODD_TAGS), Choice((1, -1, 2, -2, 3, 1 << 16, 0x7FFFFFF0, "zero", "undefined")),
    weight=3)
def _length(data: bytes, tag: tuple[int, int], delta: Any) -> bytes:
    """Odd, short, long, zero or undefined lengths on chosen elements (raw bytes: pydicom would pad them)."""
    found = _find_element(data, *tag)
    if found is None:
        return data
    _, at, size = found
    fmt = "<H" if size == 2 else "<I"
    (length,) = struct.unpack_from(fmt, data, at)
    if delta == "zero":
        new = 0
    elif delta == "undefined":
        new = (1 << 8 * size) - 1
    else:
        new = (length + delta) % (1 << 8 * size)
    return data[:at] + struct.pack(fmt, new) + data[at + size:]


TRANSFER_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
                     "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                     "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                     "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                     "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.4.100",
                     "1.2.3.4", "", "not a uid")


@op("dcm.transfer_syntax", "dicom", Choice(TRANSFER_SYNTAXES), weight=3)
def _transfer_syntax(data: bytes, uid: str) -> bytes:
    """Claim another transfer syntax for the same bytes (raw edit: pydicom would re-encode)."""
    found = _find_element(data, 0x0002, 0x0010)
    if found is None or found[2] != 2:
        return data
    _, at, _ = found
    (length,) = struct.unpack_from("<H", data, at)
    value = uid.encode() + (b"\x00" if len(uid) % 2 else b"")
    out = data[:at] + struct.pack("<H", len(value)) + value + data[at + 2 + length:]
    group = _find_element(out, 0x0002, 0x0000)  # keep the file meta group length consistent
    if group is not None and group[2] == 2 and group[0] < at:
        (glen,) = struct.unpack_from("<I", out, group[1] + 2)
        out = out[:group[1] + 2] + struct.pack("<I", (glen + len(value) - length) & 0xFFFFFFFF) + out[group[1] + 6:]
    return out


@op("dcm.strip_meta", "dicom", Choice(("preamble", "meta")))
def _strip_meta(data: bytes, how: str) -> bytes:
    """Drop the 128-byte preamble + DICM, or the whole file meta group (bare datasets exist)."""
    if data[128:132] != b"DICM":
        return data
    if how == "preamble":
        return data[132:]
    pos = 132
    while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
        found = _find_element(data, 0x0002, struct.unpack_from("<H", data, pos + 2)[0], pos)
        if found is None:
            break
        _, at, size = found
        (length,) = struct.unpack_from("<H" if size == 2 else "<I", data, at)
        pos = at + size + length
    return data[pos:]


def deflate_zeros(parts: list[bytes | int], *, raw: bool = True) -> bytes:
    """Deflate ``parts`` in order; an int part stands for that many zero bytes, never built.

    Zeros are one 1 MiB block compressed once after a full flush (no back-references across
    it) and repeated: a gigabyte of zeros costs milliseconds and ~1 MB. ``raw=False`` wraps the
    stream as zlib (PNG's IDAT), with the Adler-32 of the zeros in closed form.
    """
    chunk = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block_maker = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zero_block = block_maker.compress(bytes(chunk)) + block_maker.flush(zlib.Z_FULL_FLUSH)
    out: list[bytes] = []
    a, b = 1, 0  # Adler-32 state
    for part in parts:
        if isinstance(part, int):
            out.append(comp.flush(zlib.Z_FULL_FLUSH))
            whole, rest = divmod(part, chunk)
            out.append(zero_block * whole)
            out.append(comp.compress(bytes(rest)))
            b = (b + part * a) % 65521
        else:
            out.append(comp.compress(part))
            adler = zlib.adler32(part, (b << 16) | a)
            a, b = adler & 0xFFFF, adler >> 16
    out.append(comp.flush())
    stream = b"".join(out)
    return stream if raw else b"\x78\xda" + stream + struct.pack(">I", (b << 16) | a)


@op("dcm.deflate_zeros", "dicom", Choice((1 << 20, 300 << 20)))
def _deflate_zeros(data: bytes, n: int) -> bytes:
    """A deflated seed with ``n`` zero bytes appended in a private element (300 MiB: a deflate bomb
    past the inflation bound; 1 MiB: legitimate private data, still read)."""
    if data[128:132] != b"DICM" or b"1.2.840.10008.1.2.1.99" not in data[:2048]:
        return data
    pos = 132
    while data[pos:pos + 2] == b"\x02\x00":
        vr = data[pos + 4:pos + 6]
        long_vr = vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR")
        (length,) = struct.unpack_from("<I" if long_vr else "<H", data, pos + (8 if long_vr else 6))
        pos += (12 if long_vr else 8) + length
    try:
        body = zlib.decompress(data[pos:], -zlib.MAX_WBITS)
    except zlib.error:
        return data
    element = struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", 4) + b"FUZZ" + struct.pack("<HH2sHI", 0x7FE1, 0x1000, b"OB", 0, n)
    return data[:pos] + deflate_zeros([body, element, n])


_SOF_MARKERS = tuple(range(0xC0, 0xD0)) + (0xF7,)


@op("dcm.codestream", "dicom", Choice(("x2", "60000", "height0", "components3", "tiles1")), weight=2)
def _dcm_codestream(data: bytes, how: str) -> bytes:
    """Edit the frame header inside encapsulated pixel data (JPEG SOF, JPEG-LS SOF55, JPEG 2000 SIZ):
    a codestream larger than Rows x Columns makes the decoder allocate the codestream's size."""
    from pydicom.encaps import encapsulate, generate_frames

    def edit(ds: Any) -> None:
        if not ds["PixelData"].is_undefined_length:
            return
        frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
        siz = frame.find(b"\xff\x4f\xff\x51")
        if frame[:2] == b"\xff\xd8":
            segs = _jpeg_segments(bytes(frame)) or []
            sof = next((s for s in segs if s[0] in _SOF_MARKERS and s[0] not in (0xC4, 0xC8, 0xCC)), None)
            if sof is None:
                return
            at = sof[1] + 5  # height, width, components
            height, width = struct.unpack_from(">HH", frame, at)
            if how in ("x2", "60000"):
                struct.pack_into(">HH", frame, at, *((min(65535, 2 * height), min(65535, 2 * width))
                                                     if how == "x2" else (60000, 60000)))
            elif how == "height0":
                struct.pack_into(">H", frame, at, 0)
            elif how == "components3":
                frame[at + 4] = 3
        elif siz >= 0:
            xsiz, ysiz = struct.unpack_from(">II", frame, siz + 8)
            if how in ("x2", "60000"):
                struct.pack_into(">II", frame, siz + 8, *((2 * xsiz, 2 * ysiz) if how == "x2" else (60000, 60000)))
            elif how == "tiles1":
                struct.pack_into(">II", frame, siz + 24, 1, 1)
            elif how == "components3":
                struct.pack_into(">H", frame, siz + 40, 3)
        ds.PixelData = encapsulate([bytes(frame)])
    return _dcm_roundtrip(data, edit)


# =============================================================================================
# PNG, JPEG, TIFF, BMP: structure-aware edits that get past the container checks
# =============================================================================================

def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    chunks, pos = [], 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        ctype, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        chunks.append((ctype, payload))
        pos += 12 + length
        if ctype == b"IEND":
            break
    return chunks


def _png_join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(t, p) for t, p in chunks)


@op("png.ihdr", "png", Choice(("width", "height", "depth", "colour", "compression", "filter", "interlace")),
    Choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 255, 65535, 0x7FFFFFFF, 0xFFFFFFFF, "+1", "-1", "x2")), weight=4)
def _png_ihdr(data: bytes, fld: str, value: Any) -> bytes:
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return data
    w, h, depth, colour, comp, filt, inter = struct.unpack(">IIBBBBB", chunks[0][1])
    vals = dict(width=w, height=h, depth=depth, colour=colour, compression=comp, filter=filt, interlace=inter)
    new = _relative(vals[fld], value)
    vals[fld] = new % (1 << 32) if fld in ("width", "height") else new % 256
    chunks[0] = (b"IHDR", struct.pack(">IIBBBBB", *vals.values()))
    return _png_join(chunks)


@op("png.idat", "png", Choice(("flip", "truncate_raw", "bad_filter", "extend_raw", "empty", "no_zlib", "split")),
    POS, weight=4)
def _png_idat(data: bytes, how: str, pos: int) -> bytes:
    """Change the image data and fix the CRCs, so libpng itself sees the damage."""
    chunks = _png_chunks(data)
    if not chunks:
        return data
    idat = b"".join(p for t, p in chunks if t == b"IDAT")
    try:
        raw = zlib.decompress(idat)
    except zlib.error:
        raw = b""
    if how == "flip" and idat:
        b = bytearray(idat)
        b[pos % len(b)] ^= 1 << (pos % 8)
        new = bytes(b)
    elif how == "truncate_raw":
        new = zlib.compress(raw[: pos % max(1, len(raw))])
    elif how == "bad_filter" and raw:
        b = bytearray(raw)
        b[0] = 5 + pos % 250  # filter types are 0-4
        new = zlib.compress(bytes(b))
    elif how == "extend_raw":
        new = zlib.compress(raw + bytes(1 + pos % 4096))
    elif how == "empty":
        new = b""
    elif how == "no_zlib":
        new = raw[:64]
    else:  # split into one-byte IDAT chunks (legal, and a decoder stress)
        new = idat
    rest = [(t, p) for t, p in chunks if t != b"IDAT"]
    where = next((i for i, (t, _) in enumerate(chunks) if t == b"IDAT"), len(rest) - 1)
    parts = [(b"IDAT", new[i:i + 1]) for i in range(len(new))] if how == "split" else [(b"IDAT", new)]
    return _png_join(rest[:where] + parts + rest[where:])


@op("png.chunk", "png", Choice(("drop", "dup", "swap", "acTL", "PLTE", "tRNS", "sBIT", "IEND_first")), Int(0, 7))
def _png_chunk_op(data: bytes, how: str, index: int) -> bytes:
    chunks = _png_chunks(data)
    if not chunks:
        return data
    i = index % len(chunks)
    if how == "drop":
        del chunks[i]
    elif how == "dup":
        chunks.insert(i, chunks[i])
    elif how == "swap" and len(chunks) > 1:
        j = (i + 1) % len(chunks)
        chunks[i], chunks[j] = chunks[j], chunks[i]
    elif how == "acTL":
        chunks.insert(1, (b"acTL", struct.pack(">II", [0, 2, 0xFFFFFFFF][index % 3], 0)))
    elif how == "PLTE":
        chunks.insert(1, (b"PLTE", bytes(range(256))[: 3 * (1 + index * 37 % 300) % 769]))
    elif how == "tRNS":
        chunks.insert(1, (b"tRNS", b"\x00" * (index * 3)))
    elif how == "sBIT":
        chunks.insert(1, (b"sBIT", bytes([index * 5 % 20])))
    elif how == "IEND_first":
        chunks.insert(1, (b"IEND", b""))
    return _png_join(chunks)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]] | None:
    """(marker, offset of the marker, offset after the segment) up to and including SOS."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


@op("jpeg.sof", "jpeg", Choice(("precision", "height", "width", "components", "sampling", "quant")),
    Choice((0, 1, 2, 3, 4, 8, 12, 16, 17, 255, 65535, "+1", "-1", "x2")), weight=4)
def _jpeg_sof(data: bytes, fld: str, value: Any) -> bytes:
    segs = _jpeg_segments(data)
    sof = next((s for s in segs or [] if 0xC0 <= s[0] <= 0xCF and s[0] not in (0xC4, 0xC8, 0xCC)), None)
    if sof is None:
        return data
    b = bytearray(data)
    at = sof[1] + 4
    if fld == "precision":
        b[at] = _relative(b[at], value) % 256
    elif fld in ("height", "width"):
        off = at + (1 if fld == "height" else 3)
        (cur,) = struct.unpack_from(">H", b, off)
        struct.pack_into(">H", b, off, _relative(cur, value) % 65536)
    elif fld == "components":
        b[at + 5] = _relative(b[at + 5], value) % 256
    elif fld == "sampling" and len(b) > at + 7:
        b[at + 7] = _relative(b[at + 7], value) % 256
    elif fld == "quant" and len(b) > at + 8:
        b[at + 8] = _relative(b[at + 8], value) % 256
    return bytes(b)


@op("jpeg.segment", "jpeg", Choice(("drop", "dup", "zero_length", "huge_length", "DNL", "SOF_twice")), Int(0, 15))
def _jpeg_segment(data: bytes, how: str, index: int) -> bytes:
    segs = _jpeg_segments(data)
    if not segs:
        return data
    marker, start, end = segs[index % len(segs)]
    if how == "drop" and marker != 0xDA:
        return data[:start] + data[end:]
    if how == "dup":
        return data[:end] + data[start:end] + data[end:]
    if how == "zero_length":
        return data[:start + 2] + b"\x00\x00" + data[start + 4:]
    if how == "huge_length":
        return data[:start + 2] + b"\xff\xf0" + data[start + 4:]
    if how == "DNL":
        return data[:-2] + b"\xff\xdc\x00\x04\x00\x10" + data[-2:]
    if how == "SOF_twice":
        sof = next((s for s in segs if 0xC0 <= s[0] <= 0xC3), None)
        if sof:
            return data[:segs[-1][1]] + data[sof[1]:sof[2]] + data[segs[-1][1]:]
    return data


@op("jpeg.scan", "jpeg", Choice(("flip", "cut_keep_eoi", "zero", "markers")), POS, weight=4)
def _jpeg_scan(data: bytes, how: str, pos: int) -> bytes:
    """Damage the entropy-coded data but keep the end-of-image marker (past the container check)."""
    segs = _jpeg_segments(data)
    if not segs or segs[-1][0] != 0xDA:
        return data
    start, end = segs[-1][2], data.rfind(b"\xff\xd9")
    if end <= start:
        return data
    body = bytearray(data[start:end])
    if not body:
        return data
    i = pos % len(body)
    if how == "flip":
        body[i] ^= 1 << (pos % 8)
    elif how == "cut_keep_eoi":
        body = body[:i]
    elif how == "zero":
        body[i:i + 64] = bytes(len(body[i:i + 64]))
    else:
        body[i:i] = b"\xff\xd0\xff\xd7\xff\x00"
    return data[:start] + bytes(body) + data[end:]


@op("jpeg.scans", "jpeg", Choice((1, 10, 101, 1000)))
def _jpeg_scans(data: bytes, repeats: int) -> bytes:
    """Repeat the last scan: each repeat is a few bytes, but libjpeg walks every block again for it
    (a decode-time bomb past a certain count; libjpeg only warns about the bogus progression)."""
    last, end = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    if last < 0 or end <= last:
        return data
    return data[:end] + data[last:end] * repeats + data[end:]


TIFF_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339, 32997)


def _tiff_entries(data: bytes) -> tuple[str, list[tuple[int, int]]] | None:
    """Byte order and [(tag, offset of the 12-byte entry)] of the first IFD (classic TIFF)."""
    if data[:4] not in (b"II*\x00", b"MM\x00*") or len(data) < 8:
        return None
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack_from(order + "H", data, ifd)
    entries = []
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(data):
            break
        entries.append((struct.unpack_from(order + "H", data, at)[0], at))
    return order, entries


@op("tiff.tag", "tiff", Choice(TIFF_TAGS), Choice(INTERESTING + ("+1", "-1", "x2")), weight=4)
def _tiff_tag(data: bytes, tag: int, value: Any) -> bytes:
    parsed = _tiff_entries(data)
    if parsed is None:
        return data
    order, entries = parsed
    at = next((a for t, a in entries if t == tag), None)
    if at is None:  # add it by overwriting the last entry's tag: a different, plausible IFD
        if not entries:
            return data
        at = entries[-1][1]
        b = bytearray(data)
        struct.pack_into(order + "HHI", b, at, tag, 4, 1)
        data = bytes(b)
    b = bytearray(data)
    typ, _count = struct.unpack_from(order + "HI", b, at + 2)
    current = struct.unpack_from(order + ("H" if typ == 3 else "I"), b, at + 8)[0]
    new = _relative(current, value)
    if typ == 3:
        struct.pack_into(order + "HH", b, at + 8, new % 65536, 0)
    else:
        struct.pack_into(order + "I", b, at + 8, new % (1 << 32))
    return bytes(b)


@op("tiff.entry", "tiff", Choice(TIFF_TAGS), Choice(("type", "count")), Choice((0, 1, 2, 3, 5, 7, 12, 13, 16, 255,
                                                                                 1000, 0xFFFF, 0x7FFFFFFF)))
def _tiff_entry(data: bytes, tag: int, fld: str, value: int) -> bytes:
    parsed = _tiff_entries(data)
    if parsed is None:
        return data
    order, entries = parsed
    at = next((a for t, a in entries if t == tag), None)
    if at is None:
        return data
    b = bytearray(data)
    if fld == "type":
        struct.pack_into(order + "H", b, at + 2, value % 65536)
    else:
        struct.pack_into(order + "I", b, at + 4, value)
    return bytes(b)


@op("bmp.field", "bmp", Choice(((2, "I"), (10, "I"), (14, "I"), (18, "i"), (22, "i"), (26, "H"), (28, "H"),
                               (30, "I"), (34, "I"), (46, "I"))),
    Choice((0, 1, 2, 3, 4, 8, 12, 16, 24, 32, 40, 64, 124, 255, 65535, -1, -65535, 0x7FFFFFFF, "x2")), weight=4)
def _bmp_field(data: bytes, where: tuple[int, str], value: Any) -> bytes:
    offset, fmt = where
    if len(data) < offset + struct.calcsize(fmt):
        return data
    (cur,) = struct.unpack_from("<" + fmt, data, offset)
    new = _relative(cur, value)
    bits = 8 * struct.calcsize(fmt)
    new = new % (1 << bits)
    if fmt.islower() and new >= 1 << (bits - 1):
        new -= 1 << bits
    b = bytearray(data)
    struct.pack_into("<" + fmt, b, offset, new)
    return bytes(b)


# =============================================================================================
# Cases
# =============================================================================================

def ops_for(kind: str) -> list[Op]:
    return [o for o in OPS.values() if kind in o.kinds]


def apply(case: Case, seeds: dict[str, bytes]) -> bytes:
    """The bytes of a case: its seed with each op applied in turn (a no-op where it cannot apply)."""
    name, ops = case
    data = seeds[name]
    for step in ops:
        data = OPS[step[0]].fn(data, *step[1:])
    return data


def random_case(rng: random.Random, seeds: dict[str, bytes], kinds: dict[str, str], max_ops: int = 3) -> Case:
    """A case drawn with plain ``random`` (the long run: no shrinking overhead)."""
    name = rng.choice(sorted(seeds))
    ops = ops_for(kinds[name])
    weights = [o.weight for o in ops]
    steps = []
    for _ in range(rng.randint(1, max_ops)):
        o = rng.choices(ops, weights)[0]
        steps.append((o.name, *(p.draw(rng) for p in o.params)))
    return name, tuple(steps)


def case_strategy(seeds: dict[str, bytes], kinds: dict[str, str], max_ops: int = 3) -> Any:
    """The same cases as a Hypothesis strategy, so failures shrink to the fewest, simplest ops."""
    from hypothesis import strategies as st

    def for_seed(name: str) -> Any:
        steps = []
        for o in ops_for(kinds[name]):
            one = st.tuples(st.just(o.name), *(p.strategy() for p in o.params))
            steps.extend([one] * o.weight)
        return st.tuples(st.just(name), st.lists(st.one_of(steps), min_size=1, max_size=max_ops).map(tuple))

    return st.sampled_from(sorted(seeds)).flatmap(for_seed)


def describe(case: Case) -> str:
    name, ops = case
    return f"{name} <- " + " | ".join(
        f"{o[0]}({', '.join(repr(v) for v in o[1:])})" for o in ops)


# =============================================================================================
# The contract, checked inside the worker
# =============================================================================================

def check_contract(path: Path) -> tuple[str, str]:
    """Read ``path`` and judge the outcome: ('ok'|'error'|'violation', detail)."""
    import numpy as np

    from cxrkit.errors import UnreadableImage
    from cxrkit.io import XrayImage, read_image

    try:
        image = read_image(path)
    except UnreadableImage as exc:
        message = str(exc)
        shown = message if len(message) < 400 else message[:400] + "..."
        if str(path) not in message:
            return "violation", f"{type(exc).__name__} does not name the file: {shown!r}"
        if "\n" in message:
            return "violation", f"{type(exc).__name__} message is not one line: {shown!r}"
        leaked = [m for m in PHI_MARKERS if m in message]
        if leaked:
            return "violation", f"{type(exc).__name__} message leaks an identifier: {shown!r}"
        return "error", f"{type(exc).__name__}: {exc.reason[:120]}"
    except MemoryError:
        return "violation", "MemoryError: the read needed more than the memory bound"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the point of the contract: nothing else may escape (pyo3 panics
        # are BaseExceptions, and would end a whole `cxr predict` batch)
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        return "violation", (f"{type(exc).__name__}: {str(exc)[:300]} "
                             f"(at {Path(where.filename).name}:{where.lineno} in {where.name})")
    if not isinstance(image, XrayImage):
        return "violation", f"read_image returned {type(image).__name__}"
    px, maxval = image.pixels, image.maxval
    if not isinstance(px, np.ndarray) or px.ndim != 2 or 0 in px.shape:
        return "violation", f"pixels are not a non-empty 2-D array: {getattr(px, 'shape', px)!r}"
    if px.dtype not in (np.uint8, np.uint16, np.float32):
        return "violation", f"pixel dtype {px.dtype}"
    if not isinstance(maxval, float) or not np.isfinite(maxval):
        return "violation", f"maxval {maxval!r} is not a finite float"
    bits = np.log2(maxval + 1)
    if not (1 <= bits <= 32 and float(bits).is_integer()):
        return "violation", f"maxval {maxval!r} is not 2**k - 1 for 1 <= k <= 32"
    if px.dtype.kind == "f" and not np.isfinite(px).all():
        return "violation", f"{int((~np.isfinite(px)).sum())} NaN/inf pixels"
    lo, hi = float(px.min()), float(px.max())
    if lo < 0 or hi > maxval:
        return "violation", f"pixels in [{lo}, {hi}], outside [0, maxval={maxval}]"
    if (image.meta.get("height"), image.meta.get("width")) != px.shape:
        return "violation", f"meta size {image.meta.get('height')}x{image.meta.get('width')} != pixels {px.shape}"
    return "ok", f"{px.shape[0]}x{px.shape[1]} {px.dtype} maxval={maxval:g}"


class _SelfTestReader:
    """Self-test only (``CXRKIT_FUZZ_SELFTEST=1``): a reader that fails the way a broken decoder
    would, so tests can check that the harness reports each failure instead of passing it."""

    name = "selftest"
    MAGIC = b"CXRKIT-FUZZ-SELFTEST "

    def supports(self, header: bytes, path: Any = None) -> bool:
        return header.startswith(self.MAGIC)

    def read(self, path: Any) -> Any:
        import numpy as np

        from cxrkit.io import XrayImage

        how = Path(path).read_bytes()[len(self.MAGIC):].strip()
        if how == b"hang":
            while True:
                time.sleep(0.1)
        if how == b"crash":
            os.abort()
        if how == b"allocate":
            return bytearray(4 * DEFAULT_MEMORY)  # MemoryError under RLIMIT_AS
        if how == b"nan":
            return XrayImage(np.full((2, 2), np.nan, np.float32), 255.0, {"height": 2, "width": 2})
        if how == b"keyerror":
            raise KeyError("BitsStored")
        raise ValueError(f"unknown self-test {how!r}")


def _worker_main() -> None:
    """Worker loop: read (length, pickled bytes) from stdin, write the case, check it, reply."""
    import resource

    memory = int(os.environ.get("CXRKIT_FUZZ_MEMORY", DEFAULT_MEMORY))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    import logging

    logging.disable(logging.CRITICAL)
    import cxrkit.io  # noqa: F401  (import before the first case: its time is not the case's)

    workdir = Path(sys.argv[2])
    if os.environ.get("CXRKIT_FUZZ_SELFTEST") == "1":
        from cxrkit.io import READERS

        others = dict(READERS)
        READERS.clear()
        READERS["selftest"] = _SelfTestReader()  # type: ignore[assignment]
        READERS.update(others)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")
    stdout.flush()
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        (n,) = struct.unpack("<Q", head)
        suffix, data = pickle.loads(stdin.read(n))
        path = workdir / f"fuzzcase{suffix}"
        path.write_bytes(data)
        started = time.perf_counter()
        kind, detail = check_contract(path)
        elapsed = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        reply = pickle.dumps((kind, detail, elapsed, rss))
        stdout.write(struct.pack("<Q", len(reply)) + reply)
        stdout.flush()


# =============================================================================================
# The parent side: one worker process, restarted after a crash or a hang
# =============================================================================================

@dataclass
class Outcome:
    kind: str  # ok | error | violation | hang | crash
    detail: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.kind in ("ok", "error")


@dataclass
class Runner:
    """Runs cases in an isolated worker: timeout -> 'hang', dead worker -> 'crash'."""

    timeout: float = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the worker
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, init=False, repr=False)
    peak_rss: int = field(default=0, init=False)
    restarts: int = field(default=0, init=False)

    def _start(self) -> subprocess.Popen:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cxrkit-fuzz-")
        env = {**os.environ, "CXRKIT_FUZZ_MEMORY": str(self.memory), "OMP_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", **self.env}
        env.pop("CXRKIT_MAX_PIXELS", None)  # the default limit is part of what is tested
        self._stderr = open(Path(self._tmp.name) / "worker.stderr", "ab")
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", self._tmp.name],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
                                start_new_session=True)
        ready = select.select([proc.stdout], [], [], 120)[0]
        if not ready or proc.stdout.read(1) != b"R":
            proc.kill()
            raise RuntimeError(f"fuzz worker did not start; see {self._tmp.name}/worker.stderr")
        return proc

    def run(self, data: bytes, suffix: str = ".bin") -> Outcome:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        message = pickle.dumps((suffix, data))
        started = time.perf_counter()
        try:
            proc.stdin.write(struct.pack("<Q", len(message)) + message)
            proc.stdin.flush()
        except BrokenPipeError:
            return self._dead(started)
        if not select.select([proc.stdout], [], [], self.timeout)[0]:
            self._kill()
            return Outcome("hang", f"no answer within {self.timeout:g} s", time.perf_counter() - started)
        head = proc.stdout.read(8)
        if len(head) < 8:
            return self._dead(started)
        (n,) = struct.unpack("<Q", head)
        kind, detail, seconds, rss = pickle.loads(proc.stdout.read(n))
        self.peak_rss = max(self.peak_rss, rss)
        return Outcome(kind, detail, seconds)

    def _dead(self, started: float) -> Outcome:
        proc = self._proc
        code = proc.wait() if proc is not None else None
        self._proc = None
        self.restarts += 1
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
        return Outcome("crash", f"the worker died ({how})", time.perf_counter() - started)

    def _kill(self) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait()
            self._proc = None
            self.restarts += 1

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except Exception:
                self._kill()
            self._proc = None
        if self._tmp is not None:
            getattr(self, "_stderr", None) and self._stderr.close()
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SUFFIX = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp"}


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    _worker_main()
