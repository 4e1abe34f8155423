"""How the CPU algorithms' large temporaries are allocated.

glibc's malloc serves blocks above its mmap threshold (at most 32 MiB, dynamically) with fresh
``mmap`` calls and returns them with ``munmap``, and trims freed memory at the top of the heap
beyond its trim threshold: every call of an FFT-based algorithm on a few-megapixel image then
page-faults its padded input, block spectra and output into existence again, a few milliseconds
per call (the overlap-save algorithm on a 768 x 1536 image took 13 ms instead of 4.7, the FFT
on 2048 x 2048 22 ms instead of 16, on the reference machine).  The first time a CPU algorithm
runs, gpuconv raises both thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`) so that
such blocks come from the heap and are reused; the cost is that the process may keep up to
:data:`TRIM_THRESHOLD` bytes of freed memory.  ``GPUCONV_MALLOC=system`` leaves malloc alone, as
do the ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables (the user's
own settings win).  Nothing happens on other C libraries.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

_lock = threading.Lock()
_state: str | None = None  # what configure() did, once it ran


def configure() -> str:
    """Raise glibc's mmap and trim thresholds once per process; returns what was done."""
    global _state
    if _state is not None:
        return _state
    with _lock:
        if _state is None:
            _state = _apply()
    return _state


def _apply() -> str:
    if os.environ.get("GPUCONV_MALLOC", "").strip().lower() == "system":
        return "left alone (GPUCONV_MALLOC=system)"
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return "left alone (MALLOC_*_THRESHOLD_ set in the environment)"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "left alone (not glibc)"
    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(
            _M_TRIM_THRESHOLD, TRIM_THRESHOLD
        )
    except (OSError, AttributeError):
        return "left alone (mallopt unavailable)"
    if not ok:
        return "left alone (mallopt refused)"
    return f"glibc mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB"
