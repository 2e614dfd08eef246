"""Decoding the one frame of a DICOM file, with the fast and fallback decoders around pydicom.

* **imagecodecs first for lossless JPEG and JPEG-LS** (unsigned, single frame):
  bit-identical to pylibjpeg on the test files and 3-5x faster, pydicom as the fallback.
* **imagecodecs as the fallback for JPEG baseline/extended**: pylibjpeg cannot decode
  12-bit JPEG Extended (``RG2_JPLY.dcm``: libjpeg error -1038).
* A JPEG/JPEG-LS frame without its end-of-image marker is refused up front.
* The codestream's own frame header (JPEG SOF, JPEG-LS SOF55, JPEG 2000 SIZ) is checked
  against Rows x Columns before decoding: decoders allocate what the codestream declares.

Every decoder failure becomes one ``UnreadableImage`` naming the compression and the
decoder's short message (patient data withheld, see :mod:`._dicom_header`).
"""

from __future__ import annotations

import logging
import struct
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependency, UnreadableImage, UnsupportedImage
from ..warning_policy import withheld_warnings
from ._codestream import MAX_SCAN_PIXELS, MAX_SCANS, MAX_TILES, parse_codestream, scan_budget_exceeded
from ._dicom_header import code_string, short_reason

__all__ = ["decode_pixels"]

log = logging.getLogger("cxrkit.io.dicom")

# Transfer syntax UID -> imagecodecs decoder tried *before* pydicom (lossless: exact, faster).
_FAST = {
    "1.2.840.10008.1.2.4.57": "ljpeg_decode",  # JPEG Lossless, Process 14
    "1.2.840.10008.1.2.4.70": "ljpeg_decode",  # JPEG Lossless, Process 14 SV1
    "1.2.840.10008.1.2.4.80": "jpegls_decode",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "jpegls_decode",  # JPEG-LS Near-Lossless
}
# Transfer syntax UID -> imagecodecs decoders tried *after* pydicom fails. Not JPEG 2000:
# both sides wrap the same OpenJPEG, so a second try only doubles the time to fail.
_FALLBACK = {
    "1.2.840.10008.1.2.4.50": ("jpeg8_decode",),  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": ("jpeg8_decode", "jpeg_decode"),  # JPEG Extended (12-bit)
}

# JPEG (ISO 10918) and JPEG-LS codestreams end with the EOI marker FFD9. Without it the
# frame was cut short, and the decoders do not say so: libjpeg returns the missing rows
# blank or as noise, CharLS spends ~5 s (2140x1760) before failing. Checked up front, as
# the raster reader does for .jpg files. (JPEG 2000 needs no check: OpenJPEG fails cleanly.)
_NEEDS_EOI = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                        "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})


def _to_signed(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """Reinterpret unsigned decoder output as two's complement in ``bits_stored`` bits."""
    out = arr.astype(np.int32)
    out[out >= 2 ** (bits_stored - 1)] -= 2**bits_stored
    return out


def _imagecodecs_decode(ds: Any, names: tuple[str, ...] | str) -> np.ndarray:
    import imagecodecs
    from pydicom.encaps import get_frame

    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    error: Exception | None = None
    for name in (names,) if isinstance(names, str) else names:
        try:
            arr = np.asarray(getattr(imagecodecs, name)(frame))
        except Exception as exc:  # imagecodecs raises codec-specific error classes
            error = exc
            continue
        if arr.shape != (int(ds.Rows), int(ds.Columns)):
            error = ValueError(f"decoded shape {arr.shape} != {ds.Rows}x{ds.Columns}")
            continue
        if int(ds.get("PixelRepresentation", 0)) == 1:
            arr = _to_signed(arr, int(ds.get("BitsStored") or ds.BitsAllocated))
        return arr
    assert error is not None
    raise error


def decode_pixels(path: Path, ds: Any) -> np.ndarray:
    """Decode the single frame of ``ds``; any decoder failure becomes UnreadableImage."""
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    uid = str(ts) if ts else ""
    if ts is None or not getattr(ts, "is_transfer_syntax", False):
        # pydicom's UID.is_compressed raises ValueError for such a UID: say what is wrong instead.
        raise UnreadableImage(
            path, f"(0002,0010) Transfer Syntax UID {code_string(uid)} is not a DICOM transfer syntax: corrupt file meta"
        )
    ts_name = getattr(ts, "name", uid) or "unknown transfer syntax"
    compressed = bool(ts.is_compressed)
    if uid in _NEEDS_EOI:
        _check_end_of_image(path, ds, ts_name)
    if uid == "1.2.840.10008.1.2.5":
        _check_rle(path, ds)
    elif compressed:
        _check_codestream(path, ds, ts_name)

    if uid in _FAST and int(ds.get("PixelRepresentation", 0)) == 0:
        try:
            return _imagecodecs_decode(ds, _FAST[uid])
        except ImportError:
            log.debug("imagecodecs missing: decoding %s with pydicom", ts_name)
        except Exception as exc:
            if _FAST[uid] == "jpegls_decode" and type(exc).__name__ == "JpeglsError":
                # CharLS is the JPEG-LS reference decoder: a stream it calls invalid is, and
                # pylibjpeg would spend up to a minute turning it into noise (79 s at 49 MP).
                raise UnreadableImage(path, f"corrupt {ts_name} pixel data: {short_reason(exc)}") from None
            log.debug("imagecodecs failed on %s (%s): trying pydicom", ts_name, short_reason(exc))

    try:
        with withheld_warnings():
            if uid == "1.2.840.10008.1.2.5":
                # RLE with pydicom's own decoder, not pylibjpeg-rle: identical output, and on a
                # corrupt segment the Rust decoder panics (pyo3 PanicException, a BaseException)
                # and prints a Rust backtrace on stderr. ~0.15 s for 2140x1760; RLE films are rare.
                ds.pixel_array_options(decoding_plugin="pydicom")
            return np.asarray(ds.pixel_array)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        # Not only Exception: a Rust decoder (pylibjpeg-rle, kept out of the RLE path above)
        # panics with pyo3's PanicException, a BaseException that would end a whole batch.
        first_error = exc
    message = str(first_error)
    if "missing" in message.lower() and "dependenc" in message.lower():
        raise MissingDependency(
            "pylibjpeg[all]", f"Decoding DICOM pixel data compressed as {ts_name}"
        ) from None
    if uid in _FALLBACK:
        try:
            return _imagecodecs_decode(ds, _FALLBACK[uid])
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except ImportError:
            raise MissingDependency("imagecodecs", f"Decoding DICOM pixel data compressed as {ts_name}") from None
        except BaseException as exc:
            log.debug("imagecodecs fallback failed on %s: %s", ts_name, short_reason(exc))
    what = "compressed" if compressed else "uncompressed"
    raise UnreadableImage(
        path, f"corrupt or truncated {what} pixel data ({ts_name}): {short_reason(first_error)}"
    ) from None


def _check_end_of_image(path: Path, ds: Any, ts_name: str) -> None:
    """Refuse a JPEG/JPEG-LS frame without its end-of-image marker (see ``_NEEDS_EOI``)."""
    from pydicom.encaps import get_frame

    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    except Exception:
        return  # broken encapsulation: the decoders below fail on it with their own message
    # Encoders pad a frame to even length with 00 (or FF, a fill byte before a marker).
    if not bytes(frame[-64:]).rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
        raise UnreadableImage(
            path, f"truncated {ts_name} pixel data: the codestream has no end-of-image marker (file cut short?)"
        )


def _check_codestream(path: Path, ds: Any, ts_name: str) -> None:
    """Refuse a frame whose codestream declares more than the header's one Rows x Columns plane,
    or more work than any radiograph needs, before a decoder allocates or loops on it."""
    from pydicom.encaps import get_frame

    try:
        frame = bytes(get_frame(ds.PixelData, 0, number_of_frames=1))
    except Exception:
        return  # broken encapsulation: the decoders below fail on it with their own message
    cs = parse_codestream(frame)
    if cs is None:
        return
    rows, cols = int(ds.Rows), int(ds.Columns)
    if cs.width < 1 or cs.height < 1 or cs.width > cols or cs.height > rows:
        raise UnreadableImage(
            path, f"corrupt {ts_name} pixel data: the codestream declares a {cs.width}x{cs.height} image "
            f"but the header a {cols}x{rows} one (Columns x Rows); refused before decoding"
        )
    if cs.components != 1:
        raise UnreadableImage(
            path, f"corrupt {ts_name} pixel data: the codestream has {cs.components} components "
            "but the header says one sample per pixel; refused before decoding"
        )
    if cs.kind == "jpeg2000" and not 1 <= cs.scans <= MAX_TILES:
        raise UnreadableImage(
            path, f"corrupt {ts_name} pixel data: the codestream's tiling gives {cs.scans} tiles "
            f"(JPEG 2000 allows 1 to {MAX_TILES})"
        )
    if cs.kind != "jpeg2000" and scan_budget_exceeded(cs.scans, rows * cols):
        raise UnsupportedImage(
            path, f"{ts_name} pixel data in {cs.scans} scans over {rows * cols / 1e6:.1f} megapixels, over the "
            f"limit of {MAX_SCANS} scans and {MAX_SCAN_PIXELS / 1e9:.0f} billion scan-pixels: every scan walks "
            "the whole frame again (a decode-time bomb)"
        )
    if len(frame) < cs.min_bytes:
        raise UnreadableImage(
            path, f"truncated or corrupt {ts_name} pixel data: {len(frame)} bytes cannot hold a "
            f"{cs.width}x{cs.height} image (at least {cs.min_bytes} needed); refused before decoding"
        )


def _rle_length(frame: bytes, start: int, end: int, limit: int) -> int:
    """Bytes an RLE (PackBits) segment decodes to, counted up to just past ``limit`` only."""
    total, pos = 0, start
    while pos < end and total <= limit:
        header = frame[pos]
        if header > 128:  # a run: the next byte 257 - header times
            total += 257 - header
            pos += 2
        elif header < 128:  # a literal: the next header + 1 bytes
            total += header + 1
            pos += header + 2
        else:
            pos += 1
    return total


def _check_rle(path: Path, ds: Any) -> None:
    """Refuse an RLE segment that decodes to far more than one Rows x Columns plane.

    Each two-byte run expands to 128 bytes, so a segment decodes to up to 64 times its size,
    and pydicom's decoder builds the whole segment before comparing its length. Counting the
    runs first (stopping at the limit) costs about as much as pydicom's own loop on a valid
    file. Decoders tolerate a little padding, so the limit is twice the plane.
    """
    from pydicom.encaps import get_frame

    try:
        frame = bytes(get_frame(ds.PixelData, 0, number_of_frames=1))
        (count,) = struct.unpack_from("<I", frame, 0)
        offsets = list(struct.unpack_from("<15I", frame, 4)[:count]) if 1 <= count <= 15 else []
    except Exception:
        return  # broken encapsulation or header: pydicom's decoder reports it
    plane = int(ds.Rows) * int(ds.Columns)
    for start, end in pairwise([*offsets, len(frame)]):
        if start < 64 or end > len(frame) or start >= end:
            return
        limit = 2 * plane + 1024
        if _rle_length(frame, start, end, limit) > limit:
            raise UnreadableImage(
                path, f"corrupt RLE Lossless pixel data: a segment decodes to more than {limit} bytes "
                f"for a {int(ds.Columns)}x{int(ds.Rows)} image (Columns x Rows); refused before decoding"
            )
