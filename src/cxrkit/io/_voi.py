"""DICOM grey-scale pipeline: modality LUT -> VOI -> inversion, in one pass.

Why not ``pydicom.pixels.apply_voi_lut``: it works in float64 and costs
130-160 ms on a 3000x2500 image. Rescale, a linear window and the inversion are
all affine maps followed by clipping, so we fold them into one
``clip(raw * a + b, 0, maxval)`` in float32 (~25 ms). Only the rare VOI LUT
Sequence, sigmoid windows and Modality LUT Sequences take slower paths.

Rules (documented here because they decide what a radiologist sees):

* **Modality LUT**: Modality LUT Sequence if present (any depth 1-16 bits, by our own
  lookup), else RescaleSlope / RescaleIntercept (default 1 / 0), applied to raw values
  already signed according to PixelRepresentation.
* **LUT descriptors**: the first mapped value is read as signed whenever its input can be
  negative (PS3.3 C.11.1.1, C.11.2.1.1): signed pixels for a Modality LUT; for a VOI LUT, a
  rescale whose output range reaches below zero (even with PixelRepresentation 0; and
  unsigned when it cannot, even with signed pixels: DCMTK agrees). A VOI
  LUT whose data use under a quarter of the declared depth is scaled by the data's depth.
* **VOI**: the first VOI LUT Sequence item if present (``'voi_lut'``); else the
  first Window Center/Width pair (``'window'``), following PS3.3 C.11.2.1.2
  for LINEAR, LINEAR_EXACT and SIGMOID, *if* the window is sensible: width
  >= 1 and at least 5 % of the image's pixels (sampled) fall strictly inside
  it. Otherwise the window would turn the image into a near-constant or a
  binary mask (``JPEG2KLossless_1s_1f_u_16_16.dcm`` stores 2725/5310 for pixels
  in 32744-65535), so we fall back to the image's min/max (``'minmax'``).
* **Inversion**: MONOCHROME1 *or* Presentation LUT Shape INVERSE means "low
  values display white"; either or both invert the output exactly once.
  For DX images PS3.3 C.8.11.6.1.2 requires INVERSE together with MONOCHROME1,
  so the two are one statement said twice, not two inversions.
* **Unusable values are absent values**: a NaN/inf window or rescale value, a zero
  RescaleSlope (DCMTK ignores it too) or a slope/intercept beyond +-1e30 (float32 would
  overflow), and a VOI or Modality LUT whose descriptor or data cannot be a table, are
  ignored as if missing (then the next rule applies). A header's display hints must never
  turn decodable pixels into NaN or a crash; the pixels are the data.
* Output: float32 in ``[0, maxval]`` with ``maxval = 2**BitsStored - 1``, always finite.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["to_display", "MIN_INSIDE_FRACTION"]

log = logging.getLogger(__name__)

#: A stored window must contain at least this fraction of the (sampled) pixels to be used.
MIN_INSIDE_FRACTION = 0.05
#: Largest |RescaleSlope| and |RescaleIntercept| used: beyond it float32 arithmetic overflows.
MAX_RESCALE = 1e30


def _first(value: Any) -> float | None:
    """First number of a possibly multi-valued DICOM element, or None (also for NaN and inf)."""
    if value is None:
        return None
    try:
        if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
            value = value[0]
        number = float(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return number if np.isfinite(number) else None


def _rescale(ds: Any) -> tuple[float, float]:
    """RescaleSlope/RescaleIntercept, with unusable values (0, NaN, inf, beyond 1e30) ignored."""
    slope = _first(ds.get("RescaleSlope"))
    intercept = _first(ds.get("RescaleIntercept"))
    if slope is None or slope == 0 or abs(slope) > MAX_RESCALE:
        if slope is not None:
            log.debug("ignoring unusable RescaleSlope %r", slope)
        slope = 1.0
    if intercept is None or abs(intercept) > MAX_RESCALE:
        intercept = 0.0
    return slope, intercept


def _lut_item(item: Any, *, complete: bool = False) -> tuple[int, int, int] | None:
    """A LUT item's descriptor (entries, first input, bits) if it and its data can be a table.

    PS3.3 C.11.1.1: three values, entries 0 meaning 65536, bits 8 or 16 (vendors write 10-16);
    the data must hold at least one entry, or with ``complete`` every declared entry (a
    Modality LUT short of its entries maps stored values to units it does not define).
    Anything else is a corrupt table, and None.
    """
    try:
        descriptor = [int(v) for v in item.LUTDescriptor]
        data = item["LUTData"].value
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if len(descriptor) != 3 or not 1 <= descriptor[2] <= 16 or data is None:
        return None
    n = descriptor[0] or 65536
    if isinstance(data, (bytes, bytearray)):
        size = len(data) // 2
    else:
        size = len(data) if hasattr(data, "__len__") else 1
    if size < 1 or n < 1 or complete and size < n:
        return None
    return n, descriptor[1], descriptor[2]


def _window_bounds(center: float, width: float, function: str) -> tuple[float, float]:
    """Input values mapped to black and to white by the window (PS3.3 C.11.2.1.2/3)."""
    if function == "LINEAR_EXACT":
        return center - width / 2, center + width / 2
    return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2


def _lookup(values: np.ndarray, item: Any, descriptor: tuple[int, int, int], ds: Any, *, signed: bool,
            voi: bool) -> tuple[np.ndarray, float]:
    """Apply one Modality or VOI LUT item (PS3.3 C.11.1.1, C.11.2.1.1): inputs below the first
    mapped value take the first entry, inputs past the table the last. Returns float32 output
    and the LUT's white. ``descriptor`` is the item's checked (entries, first input, bits).

    ``signed``: read the descriptor's first mapped value as SS, not US. The standard lets its VR
    follow the input: the stored pixels for a Modality LUT, the Modality LUT's output for a
    VOI LUT. A file with Pixel Representation 0 whose rescale reaches below zero still writes
    -1024 as 64512 when the descriptor is US (implicit VR, or converters that copy the
    pixels' VR); read unsigned, every pixel would fall below the table and the film be black.

    ``voi``: check the declared bit depth against the data. A VOI LUT exists to span the
    display range, so data that use under a quarter of the declared range (a 12-bit table
    declared 16-bit) mean an overstated descriptor, and the data's own depth is used instead
    (DCMTK's ``+Mv``; by default it renders such a film nearly black).

    Written here rather than calling pydicom's ``apply_voi``/``apply_modality_lut``: pydicom
    3.0.2 computes the table index in the LUT's own dtype (an 8-bit LUT wraps an input of
    4080 to index 240 instead of clipping), and refuses Modality LUTs of 10-15 bits.
    """
    n, first, bits = descriptor
    if signed and first >= 32768:
        first -= 65536
    elem = item["LUTData"]
    if isinstance(elem.value, (bytes, bytearray)):
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        data = elem.value[: len(elem.value) // 2 * 2]  # an odd byte cannot be a 16-bit entry
        lut = np.frombuffer(data, dtype="<u2" if little else ">u2")[:n]
    else:
        lut = np.asarray(elem.value if elem.VM > 1 else [elem.value])
    lut = lut.astype(np.float32)
    index = np.clip(values.astype(np.int64) - first, 0, len(lut) - 1)
    out = lut[index]
    white = float(2**bits - 1)
    top = float(lut.max()) if lut.size else 0.0
    data_white = float(2 ** int(np.ceil(np.log2(top + 1))) - 1) if top >= 1 else white
    if top > white:  # descriptor understates the LUT's depth, a known vendor bug
        white = data_white
    elif voi and data_white < (white + 1) / 4:  # overstated: the data are 2+ bits short
        log.debug("VOI LUT declares %d bits, its data use %d: using the data's depth", bits, int(np.log2(data_white + 1)))
        white = data_white
    return out, white


def _can_be_negative(ds: Any, slope: float, intercept: float) -> bool:
    """Whether rescaled values can be negative for *some* stored value (PS3.3 C.11.2.1.1)."""
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    return min(lo * slope + intercept, hi * slope + intercept) < 0


def _sample(raw: np.ndarray) -> np.ndarray:
    step = max(1, int(np.sqrt(raw.size / 65536)))
    return raw[::step, ::step]


def to_display(raw: np.ndarray, ds: Any, maxval: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn stored pixel values into float32 display values in ``[0, maxval]``, bright = dense.

    Returns the pixels and a dict with ``window_source``, ``window`` ((center,
    width) applied, or None) and ``inverted``.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    invert = photometric == "MONOCHROME1" or shape == "INVERSE"
    info: dict[str, Any] = {"window": None, "inverted": invert}

    # --- Modality LUT -------------------------------------------------------------
    slope, intercept = 1.0, 0.0
    modality_lut = ds.get("ModalityLUTSequence")
    mapped = None
    modality_table = _lut_item(modality_lut[0], complete=True) if modality_lut else None
    if modality_table is not None:
        signed_pixels = int(ds.get("PixelRepresentation", 0)) == 1
        mapped, _ = _lookup(raw, modality_lut[0], modality_table, ds, signed=signed_pixels, voi=False)
        log.debug("applied Modality LUT Sequence")
        raw = mapped
    else:
        if modality_lut:
            log.debug("ignoring a Modality LUT Sequence without a usable table")
        slope, intercept = _rescale(ds)

    # --- VOI LUT Sequence (rare: a table lookup) --------------------------------------
    voi_lut = ds.get("VOILUTSequence")
    voi_table = _lut_item(voi_lut[0]) if voi_lut else None
    if voi_lut and voi_table is None:
        log.debug("ignoring a VOI LUT Sequence without a usable table")
    elif voi_table is not None:
        values = raw if (slope, intercept) == (1.0, 0.0) else np.rint(raw * slope + intercept)
        # After a Modality LUT the input is its (unsigned) output; else the rescaled pixels.
        signed = mapped is None and _can_be_negative(ds, slope, intercept)
        out, white = _lookup(values, voi_lut[0], voi_table, ds, signed=signed, voi=True)
        out *= np.float32(maxval / white)
        if invert:
            np.subtract(np.float32(maxval), out, out=out)
        np.clip(out, 0, maxval, out=out)
        info["window_source"] = "voi_lut"
        return out, info

    # --- Window (linear / linear exact / sigmoid) or min-max -----------------------
    center = _first(ds.get("WindowCenter"))
    width = _first(ds.get("WindowWidth"))
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    sample = _sample(raw).astype(np.float32) * np.float32(slope) + np.float32(intercept)
    window: tuple[float, float] | None = None  # (center, width), where the file's window is used
    if center is not None and width is not None and width >= 1:
        lo, hi = _window_bounds(center, width, function)
        inside = float(np.count_nonzero((sample > lo) & (sample < hi))) / max(sample.size, 1)
        if hi <= lo:  # a width-1 linear window is a threshold, not a display window
            inside = 0.0
        if inside >= MIN_INSIDE_FRACTION:
            window = (center, width)
        else:
            log.debug("window %s/%s holds %.1f%% of pixels: using min/max", center, width, 100 * inside)

    if window is not None and function == "SIGMOID":
        center, width = window
        x = raw.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        x -= np.float32(center)
        x *= np.float32(-4.0 / width)
        np.exp(x, out=x)
        x += np.float32(1.0)
        np.divide(np.float32(maxval), x, out=x)
        if invert:
            np.subtract(np.float32(maxval), x, out=x)
        np.clip(x, 0, maxval, out=x)
        info.update(window_source="window", window=window)
        return x, info

    if window is not None:
        lo, hi = _window_bounds(*window, function)
        info.update(window_source="window", window=window)
    else:
        lo_raw, hi_raw = float(raw.min()), float(raw.max())
        lo, hi = sorted((lo_raw * slope + intercept, hi_raw * slope + intercept))
        info["window_source"] = "minmax"
    # Linear map of the modality value m = raw*slope + intercept: lo -> 0, hi -> maxval.
    scale = maxval / (hi - lo) if hi > lo else 0.0
    a, b = slope * scale, (intercept - lo) * scale
    if invert:
        a, b = -a, maxval - b
    if a == 0:  # constant image (max == min): nothing to stretch
        out = raw.astype(np.float32)
        out.fill(np.float32(min(max(b, 0.0), maxval)))
        return out, info
    # y = a*raw + b written as (raw - z) * a, z = the raw value shown black: subtracting
    # first keeps float32 exact for the common integer min/max case (no 1e6-sized terms).
    z = -b / a
    if abs(z) < MAX_RESCALE and abs(a) > 1e-30:
        out = raw.astype(np.float32)
        out -= np.float32(z)
        out *= np.float32(a)
    else:  # a vast or tiny window: float32 would overflow to inf (then NaN); float64 holds it
        out = (raw.astype(np.float64) * a + b).astype(np.float32)
    np.clip(out, 0, maxval, out=out)
    return out, info
