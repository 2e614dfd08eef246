"""What the C decoders print: libjpeg and libpng report damage only on stderr.

OpenCV decodes a JPEG whose entropy-coded data is cut short or corrupt (a truncated file
with an end-of-image marker appended, flipped bits) into a plausible image with the rest
filled grey, and libjpeg's only sign is a line on stderr: "Corrupt JPEG data: premature end
of data segment". libpng says "Not enough image data" for a PNG whose zlib stream holds half
the rows. Neither Pillow nor imagecodecs exposes those warnings either. So file descriptor 2
is pointed at a temporary file around the decode, the lines are read back, and the reader
decides: damage becomes an error (the decoder's words in the reason), anything else is
logged at debug level and never reaches the console.

The redirect is process-wide, so decodes that use it run one at a time (a lock); output
another thread writes to stderr during those milliseconds goes to the debug log, not lost.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["captured_stderr", "decoder_damage"]

log = logging.getLogger("cxrkit.io.raster")

_LOCK = threading.Lock()  # one redirect of fd 2 at a time
# libjpeg(-turbo) warnings that mean the pixels are not the file's (jerror.h). A bad ICC
# marker only loses the colour profile, which a radiograph does not use.
_JPEG_DAMAGE = ("corrupt jpeg data", "premature end of jpeg file", "inconsistent progression sequence",
                "invalid sos parameters")


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what C code writes to fd 2 inside the block; the list is filled on exit."""
    lines: list[str] = []
    with _LOCK, tempfile.TemporaryFile() as tmp:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2 (a daemon): nothing to capture
            yield lines
            return
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(ln.strip() for ln in tmp.read(1 << 16).decode("utf-8", "replace").splitlines() if ln.strip())


def decoder_damage(fmt: str, lines: list[str]) -> str | None:
    """The first captured line saying the decoded pixels are damaged, or None; the rest is logged."""
    damage = None
    for line in lines:
        low = line.lower()
        if damage is None and fmt == "jpeg" and any(key in low for key in _JPEG_DAMAGE) and "icc" not in low:
            damage = line
        elif damage is None and fmt == "png" and low.startswith("libpng error"):
            damage = line.split(":", 1)[1].strip() or line
        else:
            log.debug("decoder said: %s", line[:200])
    return damage
