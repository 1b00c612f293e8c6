"""Freed memory kept for the next run in the process, instead of given back and faulted in.

A run allocates its arrays afresh: the book's records, the loop's rows, every table's
columns (about 100 MB at 500 assets × 2,520 days with every table). glibc's malloc gives
the free memory at the top of its heap back to the system once more than twice its
largest recent large allocation is free, so each later run in the same process (a sweep,
a notebook, the pipeline's chunks) faults every page in again and the system zeroes it:
a fifth to a quarter of the CPU of a repeated run with every table
(`bench/engine_vs_vectorbt.py`, `bench/stops_vs_vectorbt.py`). `keep_freed_memory` raises
that trim threshold to `KEEP` once per process. Setting it stops glibc from adapting its
mmap threshold, so that is pinned too, at `OWN_MAPPING`: a larger array still gets a
mapping of its own, returned to the system when freed. Peak memory is unchanged; a
process holds at most `KEEP` more between runs. Nothing is changed off glibc, nor in a
process that tuned malloc itself (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_` or
`GLIBC_TUNABLES` set, as Dask's nanny does for its workers).
"""

from __future__ import annotations

import ctypes
import os
import platform

KEEP = 256 << 20  # bytes of freed memory the heap keeps for the next run
OWN_MAPPING = 64 << 20  # allocations from this size get a mapping of their own
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
TUNED = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")

_kept: bool | None = None  # None: not decided yet in this process


def keep_freed_memory() -> bool:
    """Keep freed memory for the next run (see the module docstring); whether it is kept."""
    global _kept
    if _kept is None:
        _kept = False
        if platform.libc_ver()[0] == "glibc" and not any(os.environ.get(n) for n in TUNED):
            libc = ctypes.CDLL(None)
            _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, OWN_MAPPING)
                         and libc.mallopt(M_TRIM_THRESHOLD, KEEP))
    return _kept
