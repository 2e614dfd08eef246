"""DICOM header values read safely: ages, codes, integers, spacing, and decoder messages
with patient data withheld.

Split from :mod:`cxrkit.io.dicom` because every rule here is about what a header value
may be shown or trusted as, not about pixels: a corrupt length can make one element
swallow its neighbours, so a value is echoed only when it looks like the code it should be.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ..errors import UnreadableImage

__all__ = ["parse_age", "short_reason", "code_string", "header_int", "header_text", "pixel_spacing"]

log = logging.getLogger("cxrkit.io.dicom")

_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
# Quoted text in a library's message is usually an element's value, which can be a name or
# an ID once a corrupt length makes one element swallow its neighbours: never echo it.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|b'[^']*'")
# A header value echoed in a message must look like the code it should be (CS: upper case,
# digits, space, underscore; UI: digits and dots), or it is not shown at all.
_CODE = re.compile(r"^[A-Z0-9 _]{0,16}$|^[0-9.]{1,64}$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0, "": 1.0}


def short_reason(exc: BaseException, limit: int = 200) -> str:
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


def code_string(value: Any) -> str:
    """A header value fit for an error message: quoted if it looks like a DICOM code, else withheld."""
    text = str(value).strip()
    return repr(text) if _CODE.match(text) else "(an invalid value)"


def header_int(path: Path, ds: Any, keyword: str, default: int | None = None) -> int:
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


def header_text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def pixel_spacing(ds: Any) -> tuple[float, float] | None:
    """PixelSpacing, else ImagerPixelSpacing, as (row_mm, col_mm); None if absent or not positive."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0:
            return (row, col)
    return None
