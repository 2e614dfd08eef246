"""Recognise an image file by its content, never by its name.

Hospital exports routinely name DICOM files ``IM000001`` (no extension), and
scraped datasets contain ``.png`` files that are really JPEGs or HTML error
pages. The magic bytes at the start of a file are the only reliable clue, and
reading 132 bytes is cheap enough to do for every file in a folder scan.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "HEADER_SIZE", "detect_format", "is_image_file", "read_header"]

#: Suffixes treated as images when scanning folders (lower case, with the dot).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"}
)

#: Bytes needed to sniff every format we know: DICOM's b"DICM" sits at offset 128.
HEADER_SIZE = 132

# Value representations of explicit-VR DICOM, for recognising preamble-less files.
_DICOM_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split()
)


def read_header(path: str | os.PathLike[str], size: int = HEADER_SIZE) -> bytes:
    """Return the first ``size`` bytes of a file (fewer if the file is shorter)."""
    with open(path, "rb") as fh:
        return fh.read(size)


def _looks_like_bare_dicom(head: bytes) -> bool:
    """True for a DICOM dataset written without the 128-byte preamble and b"DICM".

    Such files start directly with a data element, in practice from group 0x0002
    (file meta) or 0x0008 (identification: SpecificCharacterSet, ImageType,
    SOPClassUID...). We check the tag and that what follows is either a valid
    explicit VR or a plausible implicit-VR length: eight bytes, no parsing, so a
    folder scan stays fast. ``read_image`` then confirms with pydicom and fails
    with a clear error if the guess was wrong.
    """
    if len(head) < 8:
        return False
    group, element = struct.unpack_from("<HH", head, 0)
    if group not in (0x0002, 0x0008) or element > 0x00FF:
        return False
    if head[4:6] in _DICOM_VRS:
        return True
    (length,) = struct.unpack_from("<I", head, 4)
    return length < 0x10000 and length % 2 == 0


def detect_format(path_or_header_bytes: str | os.PathLike[str] | bytes | bytearray) -> str | None:
    """Name the format of a file (or of its first bytes) from its magic bytes.

    Returns ``'dicom'``, ``'png'``, ``'jpeg'``, ``'tiff'``, ``'bmp'``, ``'jp2'``,
    ``'j2k'``, ``'gif'``, ``'webp'`` or ``None`` when the content is not a known
    image (or the path cannot be opened). The file name is ignored on purpose.
    Reading a path costs one ``open`` and at most 132 bytes.
    """
    if isinstance(path_or_header_bytes, (bytes, bytearray, memoryview)):
        head = bytes(path_or_header_bytes[:HEADER_SIZE])
    else:
        try:
            head = read_header(path_or_header_bytes)
        except OSError:
            return None
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return "jp2"
    if head.startswith(b"\xff\x4f\xff\x51"):
        return "j2k"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if _looks_like_bare_dicom(head):
        return "dicom"
    return None


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Decide whether a folder scan should pick up ``path``.

    True for a regular, non-hidden file whose suffix is in ``IMAGE_SUFFIXES``
    (no read at all), or whose content is DICOM (DICOM files often have no
    extension; reads at most 132 bytes). Hidden files are skipped because
    macOS ``._IM0001.dcm`` resource forks and editor backups are not images.
    """
    p = Path(path)
    if p.name.startswith("."):
        return False
    try:
        if not p.is_file():
            return False
    except OSError:
        return False
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return True
    return detect_format(p) == "dicom"
