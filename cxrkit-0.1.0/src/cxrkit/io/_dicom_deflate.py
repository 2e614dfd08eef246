"""Deflated Explicit VR Little Endian DICOM, inflated within a bound.

pydicom inflates a deflated dataset whole (``zlib.decompress``) inside ``dcmread``, before
any element can be checked: zlib expands up to ~1000:1, so a 1 MB file becomes a gigabyte or
more in memory before Rows x Columns is even read. Legitimate deflated files exist (some
archives and gateways write them), so they are read, not refused: the dataset is inflated
here with ``zlib.decompressobj(...).decompress(data, max_length)``, stopping one byte past
the most any image within the pixel limit can need (``max_file_bytes(4)``: 32-bit samples,
one frame, plus header slack), and only then parsed by pydicom.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

from ..errors import UnreadableImage, UnsupportedImage
from ._image import MAX_PIXELS_ENV, max_file_bytes, max_pixels

__all__: list[str] = []

DEFLATED = "1.2.840.10008.1.2.1.99"
# Explicit VR elements with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())


def _meta_end(data: bytes, start: int) -> int:
    """Offset of the first byte after the file meta group (always explicit VR little endian)."""
    pos = start
    while data[pos : pos + 2] == b"\x02\x00" and pos + 8 <= len(data):
        if data[pos + 4 : pos + 6] in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            pos += 12 + length
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            pos += 8 + length
    return min(pos, len(data))


def inflate_bounded(path: Path, zipped: bytes | memoryview) -> bytes:
    """Inflate a raw deflate stream, refusing it as soon as it passes ``max_file_bytes(4)``."""
    limit = max_file_bytes(4)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(zipped, limit + 1)
    except zlib.error as exc:
        raise UnreadableImage(path, f"not a readable DICOM file: corrupt deflated dataset ({exc})") from None
    if len(out) <= limit and not inflater.eof:
        raise UnreadableImage(path, "not a readable DICOM file: truncated deflated dataset (the stream has no end)")
    if len(out) > limit:
        raise UnsupportedImage(
            path, f"deflated DICOM dataset inflates to more than {limit / 1e6:.1f} MB, more than any image "
            f"within the limit of {max_pixels() / 1e6:.1f} megapixels needs (a decompression bomb); "
            f"if the file is genuine, raise the limit with the environment variable {MAX_PIXELS_ENV}=<pixels>"
        )
    return out


def read_deflated(path: Path, has_preamble: bool) -> Any | None:
    """The dataset of a deflated file, inflated within the bound; None if ``path`` is not deflated.

    Errors while parsing propagate as pydicom raises them (the caller turns them into one
    ``UnreadableImage``); an oversized inflation is ``UnsupportedImage``.
    """
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if DEFLATED.encode() not in head:
        return None  # the UID sits in the first elements of the file meta; nothing to do
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.filereader import read_dataset

    data = path.read_bytes()  # the caller checked the file's size
    start = 132 if has_preamble else 0
    end = _meta_end(data, start)
    meta = FileMetaDataset(read_dataset(io.BytesIO(data[start:end]), False, True))
    if str(meta.get("TransferSyntaxUID", "")) != DEFLATED:
        return None
    preamble = bytes(data[:128]) if has_preamble else None
    inflated = inflate_bounded(path, memoryview(data)[end:])
    del data
    body = read_dataset(io.BytesIO(inflated), False, True)
    del inflated
    ds = FileDataset(str(path), body, preamble, meta, False, True)
    ds.set_original_encoding(False, True, getattr(body, "_character_set", "iso8859"))
    return ds
