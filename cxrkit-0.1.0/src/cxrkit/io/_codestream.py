"""Read what a compressed codestream says about itself, before any decoder sees it.

A DICOM header's Rows x Columns is checked against the pixel limit, but the decoders
(libjpeg, CharLS, OpenJPEG) allocate what the *codestream* declares: a 4 KB JPEG-LS frame
whose SOF55 says 60000x60000 makes CharLS allocate 7 GB for a 24x16 image. And decode time
grows with the number of scans, not the file size: a progressive JPEG of a few hundred KB
that repeats near-empty scans over a large frame holds a decoder for a minute.

So the frame header (JPEG SOF, JPEG-LS SOF55, JPEG 2000 SIZ) is read here, in a few
microseconds, and its size, component count, tiling and scan count are checked first.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["Codestream", "MAX_SCANS", "MAX_SCAN_PIXELS", "MAX_TILES", "parse_codestream", "count_scans",
           "scan_budget_exceeded"]

#: Most scans a JPEG may hold. A sequential JPEG has one per component (at most 4); libjpeg's
#: progressive scripts use 6 (grey) to 10 (colour), mozjpeg's optimised ones up to ~20.
MAX_SCANS = 100
#: Each scan walks every block of the frame again (~7 ns per pixel per scan in libjpeg-turbo,
#: measured: 100 scans over 7000 x 7000 took 33 s), so scans x pixels bounds decode time:
#: 1e9 is 20 scans at the 50-megapixel limit (~7 s), 100 scans up to 10 megapixels.
MAX_SCAN_PIXELS = 1_000_000_000
#: JPEG 2000 tile indices are 0..65534 (ISO 15444-1, Isot); more tiles is not a valid codestream,
#: and 1x1 tiles over a large image make OpenJPEG spend minutes on per-tile bookkeeping.
MAX_TILES = 65535

# JPEG (ISO 10918) frame headers; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not
# frames. F7 is JPEG-LS's SOF55 (ISO 14495), same layout.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
_J2K_START = b"\xff\x4f\xff\x51"  # SOC then SIZ: the first bytes of every JPEG 2000 codestream


@dataclass(frozen=True)
class Codestream:
    """What a codestream declares: image size, components, bits, and work items."""

    kind: str  # 'jpeg' | 'jpeg-ls' | 'jpeg2000'
    width: int
    height: int
    components: int
    precision: int
    scans: int = 1  # JPEG: SOS markers; JPEG 2000: tiles
    min_bytes: int = 0  # the fewest bytes a complete codestream of this size can have (0: no bound)


def count_scans(data: bytes, first_sos: int) -> int:
    """SOS markers from ``first_sos`` on (C speed: ``bytes.count``).

    Inside JPEG entropy-coded data 0xFF is followed by 0x00 or RSTn, and in JPEG-LS by a byte
    below 0x80, so FFDA occurs only as a marker (or inside a hostile segment, which only makes
    the count larger).
    """
    return data.count(b"\xff\xda", first_sos)


def scan_budget_exceeded(scans: int, pixels: int) -> bool:
    """True when a JPEG's scans would cost more decode time than the budget allows."""
    return scans > MAX_SCANS or scans * pixels > MAX_SCAN_PIXELS


def _min_bytes(marker: int, width: int, height: int, components: int) -> int:
    """Huffman-coded JPEG spends at least one bit per code: lossless (SOF3, 7) one per sample,
    sequential DCT (SOF0, 1, 5) two per 8x8 block (DC difference and end-of-block). A frame
    shorter than that was cut or is junk, and decoders would fill the rest (pylibjpeg took 79 s
    over a 1 KB JPEG-LS frame of 7000 x 7000). Progressive, arithmetic-coded and JPEG-LS
    streams code runs of blocks or pixels in a few bits: no bound."""
    if marker in (0xC3, 0xC7):
        return width * height * components // 8
    if marker in (0xC0, 0xC1, 0xC5):
        return -(-width // 8) * -(-height // 8) * components // 4
    return 0


def _jpeg(data: bytes) -> Codestream | None:
    """Walk JPEG/JPEG-LS markers from SOI to the first scan; None if there is no frame header."""
    n, pos = len(data), 2
    frame: Codestream | None = None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return frame  # not a marker where one must be: the decoder reports the damage
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD9 or pos + 2 > n:
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if marker in _SOF and pos + 8 <= n:
            precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 2)
            kind = "jpeg-ls" if marker == 0xF7 else "jpeg"
            frame = Codestream(kind, width, height, components, precision,
                               min_bytes=_min_bytes(marker, width, height, components))
        if marker == 0xDA:
            if frame is None:
                return None
            return Codestream(frame.kind, frame.width, frame.height, frame.components, frame.precision,
                              scans=count_scans(data, pos - 2), min_bytes=frame.min_bytes)
        pos += length
    return frame


def _j2k(data: bytes) -> Codestream | None:
    """Read the SIZ segment (ISO 15444-1 A.5.1), also inside a JP2 wrapper some encoders add."""
    at = data.find(_J2K_START, 0, 1 << 16)
    if at < 0 or at + 42 > len(data):
        return None
    (xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz) = struct.unpack_from(">IIIIIIIIH", data, at + 8)
    if xt == 0 or yt == 0 or xo > xsiz or yo > ysiz:
        return Codestream("jpeg2000", 0, 0, csiz, 0, scans=0)  # invalid: refused by the caller
    precision = (data[at + 42] & 0x7F) + 1 if at + 43 <= len(data) else 0
    tiles = -(-max(0, xsiz - xto) // xt) * -(-max(0, ysiz - yto) // yt)
    return Codestream("jpeg2000", xsiz - xo, ysiz - yo, csiz, precision, scans=tiles)


def parse_codestream(data: bytes) -> Codestream | None:
    """The frame header of a JPEG, JPEG-LS or JPEG 2000 codestream, or None if none is found
    (then the decoder is left to fail on it with its own message)."""
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    return _j2k(data)
