"""Decoding the one frame of a DICOM file, with the fast and fallback decoders around pydicom.

* **imagecodecs first for lossless JPEG and JPEG-LS** (unsigned, single frame):
  bit-identical to pylibjpeg on the test files and 3-5x faster, pydicom as the fallback.
* **imagecodecs as the fallback for JPEG baseline/extended**: pylibjpeg cannot decode
  12-bit JPEG Extended (``RG2_JPLY.dcm``: libjpeg error -1038).
* A JPEG/JPEG-LS frame without its end-of-image marker is refused up front.

Every decoder failure becomes one ``UnreadableImage`` naming the compression and the
decoder's short message (patient data withheld, see :mod:`._dicom_header`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependency, UnreadableImage
from ._dicom_header import _code, _quiet, _short

__all__: list[str] = []

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


def _decode(path: Path, ds: Any) -> np.ndarray:
    """Decode the single frame of ``ds``; any decoder failure becomes UnreadableImage."""
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    uid = str(ts) if ts else ""
    if ts is None or not getattr(ts, "is_transfer_syntax", False):
        # pydicom's UID.is_compressed raises ValueError for such a UID: say what is wrong instead.
        raise UnreadableImage(
            path, f"(0002,0010) Transfer Syntax UID {_code(uid)} is not a DICOM transfer syntax: corrupt file meta"
        )
    ts_name = getattr(ts, "name", uid) or "unknown transfer syntax"
    compressed = bool(ts.is_compressed)
    if uid in _NEEDS_EOI:
        _check_end_of_image(path, ds, ts_name)

    if uid in _FAST and int(ds.get("PixelRepresentation", 0)) == 0:
        try:
            return _imagecodecs_decode(ds, _FAST[uid])
        except ImportError:
            log.debug("imagecodecs missing: decoding %s with pydicom", ts_name)
        except Exception as exc:
            log.debug("imagecodecs failed on %s (%s): trying pydicom", ts_name, _short(exc))

    try:
        with _quiet():
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
            log.debug("imagecodecs fallback failed on %s: %s", ts_name, _short(exc))
    what = "compressed" if compressed else "uncompressed"
    raise UnreadableImage(
        path, f"corrupt or truncated {what} pixel data ({ts_name}): {_short(first_error)}"
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
