"""Keep freed memory in the process heap between batches (glibc only).

Why: glibc serves every allocation above a moving threshold (128 kB at first) with a fresh
``mmap`` and gives it back with ``munmap`` when freed, and trims the heap top whenever
128 kB are free. A forward pass allocates and frees the same tens of megabytes of
activations every batch, so each batch pays for them again in page faults: measured on
50 NIH films with DenseNet-121 (fp32, batch 8), 305k minor page faults per run, 195k with
the heap kept (-36 %), for 1.08-1.11x end to end on an AMD EPYC. jemalloc does the same
only when configured for it (``LD_PRELOAD`` alone made prediction slower there; see
``docs/performance.md``), so cxrkit sets glibc's knobs itself.

It changes process-wide allocator state, so the library never calls it on import: the
``cxr`` command calls it once at start, and a long-running notebook or service may call
:func:`keep_heap` itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

__all__ = ["keep_heap"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: largest mmap threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX): a batch of 8
#: DenseNet-121 activations at 224 px (25.7 MB for the largest) stays below it
_MMAP_THRESHOLD = 32 * 1024 * 1024
#: freed memory at the top of the heap is returned to the system only above this
_TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_heap() -> bool:
    """Ask glibc to keep allocations up to 32 MB in the heap and return freed memory only above
    1 GB; True when both settings took effect, False elsewhere (not glibc, or refused)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        done = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
        done = libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and done
    except (OSError, AttributeError):
        return False
    log.debug("glibc keeps the heap between batches: %s", done)
    return done
