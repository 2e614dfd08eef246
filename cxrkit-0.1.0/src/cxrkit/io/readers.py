"""The reader table and ``read_image``: one entry point for every file format.

Formats are chosen by content (``detect_format``), not by extension, and each
reader is a small object with ``supports(header_bytes, path)`` and
``read(path)``; a new format is one class and one line in ``READERS``
(the MONAI ``ImageReader`` idea without its class hierarchy).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import UnreadableImage, UnsupportedImage
from ._image import XrayImage
from .detect import HEADER_SIZE, detect_format
from .dicom import DicomReader
from .raster import RasterReader

__all__ = ["Reader", "READERS", "read_image"]


@runtime_checkable
class Reader(Protocol):
    """What ``read_image`` needs from a format reader."""

    name: str

    def supports(self, header: bytes, path: Path | None = None) -> bool:
        """True if this reader can read a file starting with ``header`` (at most 132 bytes)."""
        ...

    def read(self, path: str | os.PathLike[str]) -> XrayImage:
        """Decode the file; raise ``UnreadableImage`` (or a subclass) on failure."""
        ...


#: Name -> reader, tried in order. Add an entry to support another format.
READERS: dict[str, Reader] = {"dicom": DicomReader(), "raster": RasterReader()}


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_image(path: str | os.PathLike[str]) -> XrayImage:
    """Read a radiograph (DICOM, PNG, JPEG, TIFF, BMP) as bright-is-dense pixels + metadata.

    Raises ``UnreadableImage`` (missing, empty, truncated, corrupt or not an
    image), ``UnsupportedImage`` (a real image cxrkit will not silently turn
    into a radiograph: multi-page, oversized, unsupported format) or
    ``UnsupportedDicom``. All carry ``.path`` and ``.reason``.
    """
    p = Path(os.fspath(path))
    try:
        if p.is_dir():
            raise UnreadableImage(p, "is a directory, not an image file")
        if not p.exists():
            raise UnreadableImage(p, "file not found")
        with open(p, "rb") as fh:
            head = fh.read(HEADER_SIZE)
    except PermissionError:
        raise UnreadableImage(p, "permission denied") from None
    except OSError as exc:
        raise UnreadableImage(p, f"cannot open file: {exc.strerror or exc}") from None
    if not head:
        raise UnreadableImage(p, "file is empty (0 bytes)")
    for reader in READERS.values():
        if reader.supports(head, p):
            return reader.read(p)
    fmt = detect_format(head)
    if fmt is not None:
        raise UnsupportedImage(
            p, f"{fmt.upper()} files are not supported; convert to PNG (16-bit to keep depth) or DICOM"
        )
    what = "text" if _looks_like_text(head) else "unrecognised binary data"
    raise UnreadableImage(
        p,
        f"not an image: the content is {what}, not DICOM, PNG, JPEG, TIFF or BMP "
        f"(formats are recognised by content; the name {p.suffix or '(no extension)'!r} is not trusted)",
    )
