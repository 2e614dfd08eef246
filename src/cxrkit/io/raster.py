"""Read PNG, JPEG, TIFF and BMP radiographs, keeping their real bit depth.

Decoding goes through OpenCV (``cv2.imdecode`` on the file's bytes: ~16 ms for
a 1024 px PNG, and it keeps 16-bit samples) after ``_raster_headers`` has
checked the size and that the file is complete. Pillow is only a fallback for
the rare file OpenCV cannot decode.

Colour rule: radiographs are grey, but exports often carry RGB(A). Alpha is
dropped (X-ray exports carry a constant alpha, and compositing over an
arbitrary background would invent pixels). RGB becomes ITU-R BT.601 luma
``0.299 R + 0.587 G + 0.114 B``, computed in float and rounded back to the
source dtype; when R = G = B (a grey image saved as RGB, the common case) the
channel is returned unchanged, so such a file reads bit-identical to its grey
twin.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgument, MissingDependency, UnreadableImage, UnsupportedImage
from ..warning_policy import withheld_warnings
from ._capture import captured_stderr, decoder_damage
from ._image import XrayImage, check_file_size, check_pixel_count, make_meta
from ._raster_headers import RasterHeader, parse_header
from .detect import detect_format

__all__ = ["RasterReader", "RASTER_FORMATS", "read_raster", "to_gray"]

log = logging.getLogger(__name__)

RASTER_FORMATS: frozenset[str] = frozenset({"png", "jpeg", "tiff", "bmp"})
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for R, G, B


def to_gray(arr: np.ndarray, order: str = "BGR") -> np.ndarray:
    """Collapse a colour array (H, W, C) to one channel by the module's colour rule.

    ``order`` is the channel order of ``arr`` (OpenCV gives BGR/BGRA, Pillow
    RGB/RGBA). A 2-channel array is grey + alpha. The result keeps ``arr.dtype``.
    """
    if arr.ndim == 2:
        return arr
    channels = arr.shape[2]
    if channels == 1:
        return np.ascontiguousarray(arr[..., 0])
    if channels == 2:  # grey + alpha
        return np.ascontiguousarray(arr[..., 0])
    if channels not in (3, 4):
        raise InvalidArgument(f"cannot convert a {channels}-channel image to grey")
    first, second, third = arr[..., 0], arr[..., 1], arr[..., 2]
    if np.array_equal(first, second) and np.array_equal(second, third):
        return np.ascontiguousarray(first)
    r, g, b = (third, second, first) if order.upper().startswith("BGR") else (first, second, third)
    luma = r.astype(np.float32) * np.float32(_LUMA[0])
    luma += g.astype(np.float32) * np.float32(_LUMA[1])
    luma += b.astype(np.float32) * np.float32(_LUMA[2])
    np.rint(luma, out=luma)
    info = np.iinfo(arr.dtype)
    np.clip(luma, info.min, info.max, out=luma)
    return luma.astype(arr.dtype)


def _decode_cv2(data: bytes) -> np.ndarray | None:
    try:
        import cv2
    except ImportError:  # pragma: no cover - cv2 is a core dependency
        log.debug("opencv not importable; using Pillow")
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        # OpenCV asserts on sizes it will not decode (e.g. a TIFF 2 million pixels wide, under
        # our pixel limit but over CV_IO_MAX_IMAGE_WIDTH) instead of returning None: let
        # Pillow try, whose failures become UnreadableImage (found by fuzzing, issue #12).
        log.debug("OpenCV refused the file: %s", " ".join(str(exc).split())[:200])
        return None


def _decode_pillow(path: Path, fmt: str, data: bytes) -> np.ndarray:
    """Decode with Pillow, returning an RGB(A)-ordered or grey array; errors become UnreadableImage."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        raise MissingDependency("opencv-python-headless", f"Reading {fmt.upper()} files") from None
    try:
        # Our own pixel limit was checked already: Pillow's DecompressionBombWarning is not news.
        with withheld_warnings():
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                mode = im.mode
                if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                    arr = np.asarray(im.convert("RGBA" if "A" in mode or "transparency" in im.info else "RGB"))
                elif mode.startswith("I;16"):
                    return np.asarray(im).astype(np.uint16)
                else:
                    arr = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise UnsupportedImage(path, f"image too large for the Pillow fallback decoder: {exc}") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for bad data
        raise UnreadableImage(path, f"corrupt {fmt.upper()} data: {_short(exc)}") from None
    return arr


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_raster(path: str | os.PathLike[str], data: bytes | None = None) -> XrayImage:
    """Read a PNG/JPEG/TIFF/BMP file into an ``XrayImage`` (uint8 or uint16 pixels).

    ``maxval`` is the white level of the decoded samples: 255 for 8-bit, 65535
    for 16-bit, never assumed. Raises ``UnreadableImage`` for empty, truncated
    or corrupt files and ``UnsupportedImage`` for multi-page/3-D TIFF, animated
    PNG, oversized images and sample types without a white level (float, 32-bit).
    """
    path = Path(path)
    if data is None:
        try:
            # Memory budget: nothing larger than 8 bytes per pixel (16-bit RGBA) at the pixel limit.
            check_file_size(path, path.stat().st_size, 8)
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableImage(path, f"cannot read file: {exc.strerror or exc}") from None
    else:
        check_file_size(path, len(data), 8)
    if not data:
        raise UnreadableImage(path, "file is empty (0 bytes)")
    fmt = detect_format(data)
    if fmt not in RASTER_FORMATS:
        raise UnreadableImage(path, f"not a PNG, JPEG, TIFF or BMP file (content detected as {fmt})")
    header: RasterHeader = parse_header(path, fmt, data)
    check_pixel_count(path, header.width, header.height)
    if header.pages > 1:
        kind = "animated PNG" if fmt == "png" else f"multi-page {fmt.upper()}"
        raise UnsupportedImage(
            path, f"{kind} with {header.pages} frames: cxrkit reads single 2-D radiographs; "
            "save the wanted page as its own file"
        )
    if fmt == "jpeg" and header.bit_depth not in (8, None):
        raise UnsupportedImage(
            path, f"{header.bit_depth}-bit JPEG is not supported outside DICOM; convert it to 16-bit PNG"
        )

    with captured_stderr() as said:
        arr = _decode_cv2(data)
    damage = decoder_damage(fmt, said)
    if damage is not None:
        # libjpeg fills what it could not decode with grey, libpng stops: the image is not the file's.
        raise UnreadableImage(path, f"damaged {fmt.upper()} image data, the decoder reports: {damage}")
    order = "BGR"
    if arr is None:
        log.debug("%s: OpenCV could not decode, trying Pillow", path)
        arr = _decode_pillow(path, fmt, data)
        order = "RGB"
    if arr.dtype not in (np.uint8, np.uint16):
        raise UnsupportedImage(
            path, f"{arr.dtype} samples are not supported: only 8- and 16-bit integer images "
            "have a defined white level; convert to 16-bit PNG"
        )
    if arr.ndim == 3 and arr.shape[2] > 4:
        raise UnsupportedImage(path, f"image with {arr.shape[2]} channels is not a radiograph")
    gray = to_gray(arr, order)
    if gray.shape != (header.height, header.width):
        raise UnreadableImage(
            path, f"decoded size {gray.shape[1]}x{gray.shape[0]} differs from the header's "
            f"{header.width}x{header.height}: corrupt file"
        )
    bits = 8 * gray.dtype.itemsize
    layout = header.layout or {2: "gray", 3: "rgb"}.get(arr.ndim, None)
    meta: dict[str, Any] = make_meta(
        source=str(path),
        format=fmt,
        bit_depth=bits,
        height=int(gray.shape[0]),
        width=int(gray.shape[1]),
        photometric=layout,
        inverted=False,
    )
    return XrayImage(pixels=gray, maxval=float(2**bits - 1), meta=meta)


class RasterReader:
    """Reader-table entry for PNG/JPEG/TIFF/BMP (see ``cxrkit.io.readers``)."""

    name = "raster"

    def supports(self, header: bytes, path: Path | None = None) -> bool:
        return detect_format(header) in RASTER_FORMATS

    def read(self, path: str | os.PathLike[str]) -> XrayImage:
        return read_raster(path)
