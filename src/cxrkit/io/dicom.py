"""Read single-frame greyscale DICOM radiographs into display-ready pixels.

pydicom 3 with the pylibjpeg plugins decodes uncompressed, RLE, JPEG
baseline/lossless, JPEG-LS and JPEG 2000 data. Two additions:

* **imagecodecs first for lossless JPEG and JPEG-LS** (unsigned, single frame):
  bit-identical to pylibjpeg on the test files and 3-5x faster (108 vs 350-430
  ms on 2140x1760), with pydicom as the fallback if it fails.
* **imagecodecs as the fallback for JPEG baseline/extended**: pylibjpeg cannot
  decode 12-bit JPEG Extended (``RG2_JPLY.dcm``: libjpeg error -1038).

(Decoding lives in ``._dicom_codec``, safe reading of header values in ``._dicom_header``.)

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

import os
from pathlib import Path
from typing import Any

from ..errors import UnreadableImage, UnsupportedDicom
from ..log_policy import guard
from ..warning_policy import withheld_warnings
from ._dicom_codec import decode_pixels
from ._dicom_deflate import read_deflated
from ._dicom_header import (
    code_string,
    header_int,
    header_text,
    parse_age,
    pixel_spacing,
    short_reason,
)
from ._image import XrayImage, check_file_size, check_pixel_count, make_meta
from ._voi import to_display
from .detect import detect_format

__all__ = ["DicomReader", "read_dicom", "RADIOGRAPH_MODALITIES", "parse_age"]

RADIOGRAPH_MODALITIES: frozenset[str] = frozenset({"CR", "DX", "DR", "RG", "OT"})


def _check_supported(path: Path, ds: Any) -> None:
    """Refuse valid DICOM that is not one greyscale radiograph, saying what was found."""
    from pydicom.uid import UID

    modality = header_text(ds, "Modality")
    if modality is not None and modality.upper() not in RADIOGRAPH_MODALITIES:
        raise UnsupportedDicom(
            path,
            f"modality {code_string(modality)} is not a projection radiograph; cxrkit reads "
            f"{', '.join(sorted(RADIOGRAPH_MODALITIES))} (or no Modality)",
        )
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedDicom(path, "floating-point pixel data is not a radiograph")
        sop = ds.get("SOPClassUID")
        known = isinstance(sop, UID) and sop.name != str(sop)  # a registered UID has a name
        kind = f" (SOP class: {sop.name if known else code_string(sop)})" if sop else ""
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
    samples = header_int(path, ds, "SamplesPerPixel", 1) or 1
    photometric = (header_text(ds, "PhotometricInterpretation") or "MONOCHROME2").upper()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedDicom(
            path,
            f"colour image (PhotometricInterpretation {code_string(photometric)}, {samples} samples per "
            "pixel): radiographs are MONOCHROME1/MONOCHROME2",
        )
    if "Rows" not in ds or "Columns" not in ds or "BitsAllocated" not in ds:
        raise UnreadableImage(path, "DICOM image without Rows, Columns or BitsAllocated")


def _geometry(path: Path, ds: Any) -> tuple[int, int, int]:
    """Rows, columns and bits stored, checked: the white level ``2**BitsStored - 1`` depends on them.

    BitsStored above BitsAllocated (or outside 1..32) is a corrupt header with no right white
    level: 2**40 - 1 would make every film black, 2**65535 overflows. It is refused, not guessed.
    """
    rows, cols = header_int(path, ds, "Rows"), header_int(path, ds, "Columns")
    if rows < 1 or cols < 1:
        raise UnreadableImage(path, f"DICOM header claims a {rows}x{cols} image (Rows x Columns): corrupt header")
    allocated = header_int(path, ds, "BitsAllocated")
    stored = header_int(path, ds, "BitsStored", allocated) or allocated  # 0 or missing: all bits allocated
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
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableImage(path, f"not a readable DICOM file: {exc.strerror or exc}") from None
    # Memory budget: no file larger than a 32-bit image at the pixel limit is read, and a
    # deflated dataset is inflated only up to that size (pydicom would inflate it whole).
    check_file_size(path, size, 4)

    import pydicom
    from pydicom.errors import InvalidDicomError

    guard()  # after the import (pydicom's config sets up its logger there); cheap, so on every read
    try:
        has_preamble = _has_preamble(path)
        with withheld_warnings():
            ds = read_deflated(path, has_preamble)
            if ds is None:
                ds = pydicom.dcmread(path, force=not has_preamble)
            # pydicom converts elements lazily, so a corrupt VR or value would otherwise raise
            # (NotImplementedError, ValueError...) wherever the header is first read. Convert
            # every element now, inside this try: one clear error for a corrupt header.
            ds.walk(lambda _ds, _elem: None)
    except UnreadableImage:
        raise
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else short_reason(exc)
        raise UnreadableImage(path, f"not a readable DICOM file: {reason}") from None
    except Exception as exc:  # struct.error and friends from a malformed header
        raise UnreadableImage(path, f"not a readable DICOM file: {short_reason(exc)}") from None
    _ensure_transfer_syntax(ds)
    _check_supported(path, ds)
    rows, cols, bits = _geometry(path, ds)
    check_pixel_count(path, cols, rows)

    raw = decode_pixels(path, ds)
    if raw.ndim != 2 or raw.shape != (rows, cols):
        raise UnsupportedDicom(
            path, f"decoded pixel array has shape {raw.shape}, expected one {rows}x{cols} frame"
        )
    maxval = float(2**bits - 1)
    pixels, info = to_display(raw, ds, maxval)

    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    sex = (header_text(ds, "PatientSex") or "").upper()
    meta = make_meta(
        source=str(path),
        format="dicom",
        bit_depth=bits,
        height=rows,
        width=cols,
        photometric=header_text(ds, "PhotometricInterpretation"),
        modality=header_text(ds, "Modality"),
        view_position=(header_text(ds, "ViewPosition") or "").upper() or None,
        patient_age=parse_age(ds.get("PatientAge")),
        patient_sex=sex if sex in ("M", "F", "O") else None,
        pixel_spacing=pixel_spacing(ds),
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
