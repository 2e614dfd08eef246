"""Read radiographs from DICOM, PNG, JPEG, TIFF and BMP into one convention.

``read_image(path)`` returns an ``XrayImage``: 2-D pixels where bright means
dense (MONOCHROME2, whatever the file stored), their white level ``maxval``
taken from the file's real bit depth, and metadata with fixed keys. Formats are
recognised by content (``detect_format``), so extension-less DICOM and
misnamed files work; ``is_image_file`` is the cheap filter for folder scans.
"""

from __future__ import annotations

from ._image import META_KEYS, XrayImage
from .detect import IMAGE_SUFFIXES, detect_format, is_image_file
from .readers import READERS, Reader, read_image

__all__ = [
    "read_image",
    "XrayImage",
    "detect_format",
    "is_image_file",
    "IMAGE_SUFFIXES",
    "META_KEYS",
    "READERS",
    "Reader",
]
