"""Library warnings raised while a file is decoded: logged by category, their text withheld.

Why: pydicom quotes element values in its warnings ("Invalid value for VR UI: '...'"), and
in a corrupt file a value can be the bytes of the patient's name once a bad length makes one
element swallow its neighbours. Pillow warns about pixel counts our own budget already checked.
Neither belongs on a console.

Why not :class:`warnings.catch_warnings`: it swaps the process-wide filters and
``showwarning`` on entry and puts back what it saved on exit, so two reader threads inside it
at once restore each other's state: a warning raised in one thread escapes, with its text, to
stderr (seen as an intermittent leak in ``cxr convert``), or lands in another block's list.
Here the state is per thread: a counter says "this thread is decoding", and one wrapper around
``warnings.showwarning``, installed once and never removed, drops what such a thread raises
and passes everything else on unchanged. Warnings the filters ignore or turn into errors are
untouched, as they would be without cxrkit.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["withheld_warnings"]

log = logging.getLogger("cxrkit.io")  # what is withheld is what the readers raise

_decoding = threading.local()
_install = threading.Lock()


def _withholding(previous: Callable[..., Any]) -> Callable[..., Any]:
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if getattr(_decoding, "depth", 0):
            log.debug("a decoder warned: %s (text withheld: it can quote header values)", category.__name__)
            return
        previous(message, category, filename, lineno, file, line)

    show.withholds_decoder_warnings = True  # type: ignore[attr-defined]
    return show


def _ensure_installed() -> None:
    """Wrap the current ``showwarning`` unless it is ours (pytest and ``logging.captureWarnings``
    replace it; whatever replaced it is wrapped in turn)."""
    if getattr(warnings.showwarning, "withholds_decoder_warnings", False):
        return
    with _install:
        if not getattr(warnings.showwarning, "withholds_decoder_warnings", False):
            warnings.showwarning = _withholding(warnings.showwarning)


@contextmanager
def withheld_warnings() -> Iterator[None]:
    """Inside the block, warnings this thread raises go to debug logging as their category only."""
    _ensure_installed()
    _decoding.depth = getattr(_decoding, "depth", 0) + 1
    try:
        yield
    finally:
        _decoding.depth -= 1
