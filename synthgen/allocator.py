"""glibc malloc settings for processes that run the same tensor code over and over (the fleet's actors).

A generator forward allocates and frees activation buffers of a few hundred KB to a few MB on every call. With
glibc's defaults, buffers above the mmap threshold are mapped and unmapped each time and the heap's free top is
given back to the OS, so every call faults its buffers in again: kernel time that a single-threaded actor pays on
every batch (benchmarks/README.md, "The actors' allocator"). Fixed, high thresholds keep freed buffers in the
heap for the next call, at the cost of holding up to ``TRIM_THRESHOLD_BYTES`` of freed memory per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt(3) parameter numbers (glibc's malloc.h)
MMAP_THRESHOLD_BYTES = 64 << 20  # allocations below this come from the heap, so their pages are reused
TRIM_THRESHOLD_BYTES = 128 << 20  # free memory at the heap's top kept for reuse, not returned to the OS


def keep_freed_memory() -> bool:
    """Set this process's glibc mmap and trim thresholds (``mallopt``); call once per worker process.

    Returns:
        True when both were set; False where there is no glibc ``mallopt`` (another OS or C library), which
        changes nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no libc found, or one without mallopt (musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
