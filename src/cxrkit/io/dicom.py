"""Read single-frame greyscale DICOM radiographs into display-ready pixels.

pydicom 3 with the pylibjpeg plugins decodes uncompressed, RLE, JPEG
baseline/lossless, JPEG-LS and JPEG 2000 data. Two additions:

* **imagecodecs first for lossless JPEG and JPEG-LS** (unsigned, single frame):
  bit-identical to pylibjpeg on the test files and 3-5x faster (108 vs 350-430
  ms on 2140x1760), with pydicom as the fallback if it fails.
* **imagecodecs as the fallback for JPEG baseline/extended**: pylibjpeg cannot
  decode 12-bit JPEG Extended (``RG2_JPLY.dcm``: libjpeg error -1038).

Every decoder failure becomes one ``UnreadableImage`` whose reason names the
compression and the decoder's short message. Refusals of valid files that are
not radiographs are ``UnsupportedDicom``. Messages never contain patient
identifiers, names or dates: they are logged and shown to people.

Accepted modalities (``RADIOGRAPH_MODALITIES``): CR, DX, RG (projection
radiographs), DR (not a DICOM term but written by some vendors), OT (digitised
films and secondary captures) and a missing Modality. Everything else (CT, MR,
US, NM, PT, MG, XA, RF, SR, SEG...) is refused: those images have other
physics, other display conventions, or are not images at all.

Grey-scale rules (modality LUT, VOI window with a sanity check, inversion of
MONOCHROME1 / INVERSE exactly once) live in ``cxrkit.io._voi``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from cxrkit.errors import MissingDependency, UnreadableImage, UnsupportedDicom
from cxrkit.io._image import XrayImage, check_pixel_count, make_meta
from cxrkit.io._voi import to_display
from cxrkit.io.detect import detect_format

__all__ = ["DicomReader", "read_dicom", "RADIOGRAPH_MODALITIES", "parse_age"]

log = logging.getLogger(__name__)

RADIOGRAPH_MODALITIES: frozenset[str] = frozenset({"CR", "DX", "DR", "RG", "OT"})

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

_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
# Quoted text in a library's message is usually an element's value, which can be a name or
# an ID once a corrupt length makes one element swallow its neighbours: never echo it.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|b'[^']*'")
# A header value echoed in a message must look like the code it should be (CS: upper case,
# digits, space, underscore; UI: digits and dots), or it is not shown at all.
_CODE = re.compile(r"^[A-Z0-9 _]{0,16}$|^[0-9.]{1,64}$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0, "": 1.0}


@contextmanager
def _quiet() -> Iterator[None]:
    """Route pydicom's warnings (odd VRs, padding) to debug logging, for this call only."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        log.debug("pydicom: %s", w.message)


def _short(exc: BaseException, limit: int = 200) -> str:
    """One line of a decoder's message: the first plugin's complaint, without the boilerplate.

    Quoted values are replaced by ``'...'``: pydicom quotes element values in its errors, and
    in a corrupt file the value of an element can be the bytes of the patient's name.
    """
    lines = [_QUOTED.sub("'...'", ln.strip()) for ln in str(exc).splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].lower().startswith("unable to decode"):
        lines = lines[1:]
    text = " ".join(lines[:1]) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_age(value: Any) -> float | None:
    """DICOM Age String ('061Y', '006M', '010D', '003W'; bare digits = years) -> years."""
    if value is None:
        return None
    m = _AGE.match(str(value))
    if not m:
        return None
    return round(int(m.group(1)) * _AGE_UNIT_YEARS[m.group(2).upper()], 4)


def _code(value: Any) -> str:
    """A header value fit for an error message: quoted if it looks like a DICOM code, else withheld."""
    text = str(value).strip()
    return repr(text) if _CODE.match(text) else "(an invalid value)"


def _int(path: Path, ds: Any, keyword: str, default: int | None = None) -> int:
    """An integer header element, or UnreadableImage naming the element (never a bare ValueError)."""
    value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise UnreadableImage(path, f"DICOM image without {keyword}")
        return default
    try:
        number = float(value[0] if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
                       else value)
    except (TypeError, ValueError, IndexError):
        raise UnreadableImage(path, f"invalid {keyword} in the DICOM header: not a number") from None
    if not number.is_integer():
        raise UnreadableImage(path, f"invalid {keyword} in the DICOM header: not an integer")
    return int(number)


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _spacing(ds: Any) -> tuple[float, float] | None:
    """PixelSpacing, else ImagerPixelSpacing, as (row_mm, col_mm); None if absent or not positive."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            row, col = (float(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0:
            return (row, col)
    return None


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


def _check_supported(path: Path, ds: Any) -> None:
    """Refuse valid DICOM that is not one greyscale radiograph, saying what was found."""
    from pydicom.uid import UID

    modality = _text(ds, "Modality")
    if modality is not None and modality.upper() not in RADIOGRAPH_MODALITIES:
        raise UnsupportedDicom(
            path,
            f"modality {_code(modality)} is not a projection radiograph; cxrkit reads "
            f"{', '.join(sorted(RADIOGRAPH_MODALITIES))} (or no Modality)",
        )
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedDicom(path, "floating-point pixel data is not a radiograph")
        sop = ds.get("SOPClassUID")
        known = isinstance(sop, UID) and sop.name != str(sop)  # a registered UID has a name
        kind = f" (SOP class: {sop.name if known else _code(sop)})" if sop else ""
        raise UnsupportedDicom(path, f"contains no pixel data{kind}")
    frames = ds.get("NumberOfFrames")
    try:
        n_frames = int(frames) if frames not in (None, "") else 1
    except (TypeError, ValueError):
        n_frames = 1
    if n_frames > 1:
        raise UnsupportedDicom(
            path, f"multi-frame DICOM ({n_frames} frames): cxrkit reads single-frame radiographs"
        )
    samples = _int(path, ds, "SamplesPerPixel", 1) or 1
    photometric = (_text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedDicom(
            path,
            f"colour image (PhotometricInterpretation {_code(photometric)}, {samples} samples per "
            "pixel): radiographs are MONOCHROME1/MONOCHROME2",
        )
    if "Rows" not in ds or "Columns" not in ds or "BitsAllocated" not in ds:
        raise UnreadableImage(path, "DICOM image without Rows, Columns or BitsAllocated")


def _geometry(path: Path, ds: Any) -> tuple[int, int, int]:
    """Rows, columns and bits stored, checked: the white level ``2**BitsStored - 1`` depends on them.

    BitsStored above BitsAllocated (or outside 1..32) is a corrupt header with no right white
    level: 2**40 - 1 would make every film black, 2**65535 overflows. It is refused, not guessed.
    """
    rows, cols = _int(path, ds, "Rows"), _int(path, ds, "Columns")
    if rows < 1 or cols < 1:
        raise UnreadableImage(path, f"DICOM header claims a {rows}x{cols} image (Rows x Columns): corrupt header")
    allocated = _int(path, ds, "BitsAllocated")
    stored = _int(path, ds, "BitsStored", allocated) or allocated  # 0 or missing: all bits allocated
    if not 1 <= allocated <= 32 or not 1 <= stored <= allocated:
        raise UnreadableImage(
            path, f"inconsistent bit depth in the DICOM header: BitsStored {stored}, BitsAllocated {allocated} "
            "(BitsStored must be 1..BitsAllocated, BitsAllocated at most 32)"
        )
    return rows, cols, stored


def read_dicom(path: str | os.PathLike[str]) -> XrayImage:
    """Read a single-frame greyscale DICOM radiograph.

    Pixels come back float32 in ``[0, 2**BitsStored - 1]``, bright = dense,
    after the modality LUT, the VOI (LUT, window or min/max) and MONOCHROME1
    inversion (see ``cxrkit.io._voi`` for the rules).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        has_preamble = _has_preamble(path)
        with _quiet():
            ds = pydicom.dcmread(path, force=not has_preamble)
            # pydicom converts elements lazily, so a corrupt VR or value would otherwise raise
            # (NotImplementedError, ValueError...) wherever the header is first read. Convert
            # every element now, inside this try: one clear error for a corrupt header.
            ds.walk(lambda _ds, _elem: None)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _short(exc)
        raise UnreadableImage(path, f"not a readable DICOM file: {reason}") from None
    except Exception as exc:  # struct.error and friends from a malformed header
        raise UnreadableImage(path, f"not a readable DICOM file: {_short(exc)}") from None
    _ensure_transfer_syntax(ds)
    _check_supported(path, ds)
    rows, cols, bits = _geometry(path, ds)
    check_pixel_count(path, cols, rows)

    raw = _decode(path, ds)
    if raw.ndim != 2 or raw.shape != (rows, cols):
        raise UnsupportedDicom(
            path, f"decoded pixel array has shape {raw.shape}, expected one {rows}x{cols} frame"
        )
    maxval = float(2**bits - 1)
    pixels, info = to_display(raw, ds, maxval)

    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    sex = (_text(ds, "PatientSex") or "").upper()
    meta = make_meta(
        source=str(path),
        format="dicom",
        bit_depth=bits,
        height=rows,
        width=cols,
        photometric=_text(ds, "PhotometricInterpretation"),
        modality=_text(ds, "Modality"),
        view_position=(_text(ds, "ViewPosition") or "").upper() or None,
        patient_age=parse_age(ds.get("PatientAge")),
        patient_sex=sex if sex in ("M", "F", "O") else None,
        pixel_spacing=_spacing(ds),
        transfer_syntax=str(ts) if ts else None,
        window_source=info["window_source"],
        window=info["window"],
        inverted=info["inverted"],
    )
    return XrayImage(pixels=pixels, maxval=maxval, meta=meta)


def _ensure_transfer_syntax(ds: Any) -> None:
    """Give a preamble-less dataset (no file meta) the transfer syntax it was read with.

    pydicom reads such files (implicit or explicit VR, little or big endian) but
    refuses to decode their pixels without (0002,0010); the encoding it detected
    while parsing is exactly the missing fact.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _has_preamble(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


class DicomReader:
    """Reader-table entry for DICOM (see ``cxrkit.io.readers``)."""

    name = "dicom"

    def supports(self, header: bytes, path: Path | None = None) -> bool:
        return detect_format(header) == "dicom"

    def read(self, path: str | os.PathLike[str]) -> XrayImage:
        return read_dicom(path)
