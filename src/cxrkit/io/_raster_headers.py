"""Check a raster file's structure and read its size before anything decodes it.

Two reasons not to hand raw bytes straight to a decoder:

* **Size first.** A 60000x60000 PNG is a few hundred bytes on disk; its
  dimensions must be checked before a decoder allocates 3.6 GB.
* **Truncation without noise.** libpng, libjpeg and libtiff write warnings to
  stderr (``libpng error: PNG input buffer is incomplete``) and OpenCV returns
  ``None`` or, for JPEG, a partly grey image. Walking the container (PNG chunks
  with their CRCs, JPEG markers up to the end-of-image marker, TIFF strip
  extents, BMP pixel array size) catches a cut file cheaply (~1 ms per MB) and
  lets us say *what* is wrong, and the C libraries never see the bad file.
* **Work first.** A progressive JPEG's decode time grows with its number of scans, so the
  scans are counted (``_codestream.MAX_SCANS``) before libjpeg loops over them.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import UnreadableImage, UnsupportedImage
from ._codestream import MAX_SCAN_PIXELS, MAX_SCANS, count_scans, scan_budget_exceeded

__all__ = ["RasterHeader", "parse_header"]

_PNG_COLOUR = {0: "gray", 2: "rgb", 3: "palette", 4: "gray+alpha", 6: "rgba"}
# SOF markers (frame headers); C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class RasterHeader:
    """What the container says about the image, before decoding."""

    width: int
    height: int
    bit_depth: int | None = None  # bits per sample as stored, when the header says
    layout: str | None = None  # 'gray' | 'gray+alpha' | 'rgb' | 'rgba' | 'palette'
    pages: int = 1


def parse_header(path: object, fmt: str, data: bytes) -> RasterHeader:
    """Validate ``data`` as a complete ``fmt`` file and return its header facts."""
    parser = {"png": _png, "jpeg": _jpeg, "tiff": _tiff, "bmp": _bmp}[fmt]
    try:
        return parser(path, data)
    except (struct.error, IndexError):
        raise UnreadableImage(path, f"truncated or corrupt {fmt.upper()} header") from None


def _png(path: object, data: bytes) -> RasterHeader:
    n = len(data)
    if n < 33 or data[12:16] != b"IHDR":
        raise UnreadableImage(path, "truncated or corrupt PNG: no IHDR header chunk")
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    pos, frames = 8, 1
    while True:
        if pos + 12 > n:
            raise UnreadableImage(
                path, f"truncated PNG: the file ends after {n} bytes, before the IEND chunk"
            )
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            raise UnreadableImage(
                path,
                f"truncated PNG: chunk {ctype.decode('latin-1')!r} needs {end} bytes "
                f"but the file has {n}",
            )
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(memoryview(data)[pos + 4 : end - 4]) != crc:
            raise UnreadableImage(
                path, f"corrupt PNG: CRC mismatch in chunk {ctype.decode('latin-1')!r}"
            )
        if ctype == b"acTL":  # animated PNG: number of frames
            (frames,) = struct.unpack_from(">I", data, pos + 8)
        if ctype == b"IEND":
            break
        pos = end
    if width == 0 or height == 0:
        raise UnreadableImage(path, f"corrupt PNG: IHDR claims {width}x{height} pixels")
    return RasterHeader(width, height, depth, _PNG_COLOUR.get(colour), pages=max(1, frames))


def _jpeg(path: object, data: bytes) -> RasterHeader:
    n, pos = len(data), 2
    frame: tuple[int, int, int, int] | None = None
    while pos < n:
        if data[pos] != 0xFF:
            raise UnreadableImage(path, f"corrupt JPEG: expected a marker at byte {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if marker == 0xD9:
            raise UnreadableImage(path, "corrupt JPEG: end-of-image before any scan")
        (length,) = struct.unpack_from(">H", data, pos)
        if marker in _JPEG_SOF:
            precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 2)
            frame = (width, height, precision, components)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if frame is None:
                raise UnreadableImage(path, "corrupt JPEG: scan data before the frame header")
            # Inside entropy-coded data 0xFF is always followed by 0x00 or RSTn, so the
            # first FFD9 after the first scan is the real end-of-image marker.
            if data.find(b"\xff\xd9", pos) < 0:
                raise UnreadableImage(
                    path, f"truncated JPEG: no end-of-image marker in the {n} bytes of the file"
                )
            width, height, precision, components = frame
            if width == 0 or height == 0:
                raise UnsupportedImage(path, "JPEG with height defined later (DNL) is not supported")
            scans = count_scans(data, pos - 2)
            if scan_budget_exceeded(scans, width * height):
                raise UnsupportedImage(
                    path, f"JPEG in {scans} scans over {width * height / 1e6:.1f} megapixels, over the limit of "
                    f"{MAX_SCANS} scans and {MAX_SCAN_PIXELS / 1e9:.0f} billion scan-pixels: every scan walks "
                    "the whole image again (a decode-time bomb)"
                )
            layout = {1: "gray", 3: "rgb", 4: "cmyk"}.get(components, f"{components} channels")
            return RasterHeader(width, height, precision, layout)
        pos += length
    raise UnreadableImage(path, f"truncated JPEG: the file ends after {n} bytes, before any scan data")


def _tiff(path: object, data: bytes) -> RasterHeader:
    order = "<" if data[:2] == b"II" else ">"
    (magic,) = struct.unpack_from(order + "H", data, 2)
    big = magic == 43
    if big:
        (ifd,) = struct.unpack_from(order + "Q", data, 8)
        count_fmt, entry_size, off_fmt, inline = "Q", 20, "Q", 8
    else:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        count_fmt, entry_size, off_fmt, inline = "H", 12, "I", 4
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
    codes = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}

    def values(entry: int) -> list[int]:
        tag_type, count = struct.unpack_from(order + "H" + off_fmt, data, entry + 2)
        if tag_type not in codes:
            return []
        nbytes = sizes[tag_type] * count
        where = entry + 4 + struct.calcsize(off_fmt)
        if nbytes > inline:
            (where,) = struct.unpack_from(order + off_fmt, data, where)
        return list(struct.unpack_from(f"{order}{count}{codes[tag_type]}", data, where))

    tags: dict[int, list[int]] = {}
    pages, seen = 0, set()
    while ifd and ifd not in seen and pages < 100_000:
        seen.add(ifd)
        (count,) = struct.unpack_from(order + count_fmt, data, ifd)
        first = ifd + struct.calcsize(count_fmt)
        if pages == 0:
            for i in range(count):
                entry = first + i * entry_size
                (tag,) = struct.unpack_from(order + "H", data, entry)
                if tag in (256, 257, 258, 259, 277, 273, 279, 324, 325, 32997):
                    tags[tag] = values(entry)
        pages += 1
        (ifd,) = struct.unpack_from(order + off_fmt, data, first + count * entry_size)
    if 256 not in tags or 257 not in tags:
        raise UnreadableImage(path, "corrupt TIFF: no image width/height in the first page")
    width, height = tags[256][0], tags[257][0]
    for offs, counts in ((273, 279), (324, 325)):
        if tags.get(offs) and tags.get(counts):
            # not strict: a damaged header may list fewer byte counts than offsets, and the
            # pairs it does give still bound the data this check needs
            end = max(o + c for o, c in zip(tags[offs], tags[counts], strict=False))
            if end > len(data):
                raise UnreadableImage(
                    path, f"truncated TIFF: pixel data needs {end} bytes but the file has {len(data)}"
                )
    spp = tags.get(277, [1])[0]
    bits = tags.get(258, [1])[0]
    if tags.get(259, [1])[0] == 1 and tags.get(279) and not tags.get(324):
        # Uncompressed strips must hold every row (rows padded to whole bytes). Otherwise the
        # header is corrupt (a flipped bit in the width, say), and libtiff would only warn on
        # stderr and OpenCV assert on the size: say so here, before any decoder runs.
        need = height * ((width * spp * bits + 7) // 8)
        have = sum(tags[279])
        if have < need:
            raise UnreadableImage(
                path, f"corrupt TIFF: {width}x{height} uncompressed pixels need {need} bytes, "
                f"the strips hold {have}"
            )
    depth = tags.get(32997, [1])[0]
    if depth > 1:
        raise UnsupportedImage(path, f"3-D TIFF ({depth} slices): cxrkit reads single 2-D radiographs")
    layout = {1: "gray", 2: "gray+alpha", 3: "rgb", 4: "rgba"}.get(spp, f"{spp} channels")
    return RasterHeader(width, height, bits, layout, pages=pages)


def _bmp(path: object, data: bytes) -> RasterHeader:
    (offset,) = struct.unpack_from("<I", data, 10)
    (dib,) = struct.unpack_from("<I", data, 14)
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _, bpp = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    else:
        width, height, _, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    height = abs(height)
    if compression == 0:  # uncompressed: the pixel array size is known exactly
        need = offset + ((bpp * width + 31) // 32) * 4 * height
        if need > len(data):
            raise UnreadableImage(
                path, f"truncated BMP: pixel data needs {need} bytes but the file has {len(data)}"
            )
    layout = "palette" if bpp <= 8 else ("rgba" if bpp == 32 else "rgb")
    return RasterHeader(width, height, 8, layout)
