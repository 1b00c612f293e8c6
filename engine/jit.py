"""numba for the engine's kernels, set up without work they never use.

Loading a kernel from the cache: numba first refreshes its target context, importing and
registering every implementation it has (lists, sets, random numbers, cffi, ...: about
0.2 s of CPU in a new process), although machine code read from the cache needs only
numba's runtime. Here a cached kernel loads with the runtime alone; a compile (a kernel
not in the cache, or any other function) refreshes the context itself, as before.

numba's array routines import `scipy.linalg` (where scipy is installed: about 0.2 s of
CPU) only to learn whether `np.correlate` and `np.convolve` may call BLAS. No kernel calls
them, nor any other linear algebra, so the routines are imported (before the registries
load, or by a cached kernel's environment) with that probe answering no: those two would
run numba's own loop instead of BLAS. `np.dot` and `np.linalg` still find BLAS when they
are compiled.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import numba
from numba import njit
from numba.core import caching, cpu
from numba.core.runtime import nrt

ARRAY_ROUTINES = "numba.np.arraymath"


def _no_blas() -> None:
    raise ImportError("BLAS not probed for the engine's kernels")


@contextlib.contextmanager
def _blas_unprobed() -> Iterator[None]:
    """While open, numba's array routines, if imported, find their BLAS probe answering
    no (unless they, or scipy's linear algebra, which makes the probe cheap, are loaded
    already)."""
    if ARRAY_ROUTINES in sys.modules or "scipy.linalg" in sys.modules:
        yield
        return
    import numba.np.linalg as linalg

    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:  # a numba without the probe: nothing to skip
        yield
        return
    linalg.ensure_blas = _no_blas
    try:
        yield
    finally:
        linalg.ensure_blas = probe


def _load_cached(self: caching.Cache, sig, target_context):
    """`Cache.load_overload` with numba's runtime set up instead of the whole context (a
    kernel's environment may still import the array routines: without the probe)."""
    nrt.rtsys.initialize(target_context)
    with _blas_unprobed(), self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
    # None when the guard swallows an error, as in numba


def _set_up() -> None:
    """Install both: registries loaded after the array routines, and cached kernels loaded
    without the registries (unless this numba lacks the methods that replaces)."""
    registries = cpu.CPUContext.load_additional_registries
    if not getattr(registries, "engine_set_up", False):
        def load_additional_registries(context: cpu.CPUContext) -> None:
            with _blas_unprobed():
                __import__(ARRAY_ROUTINES)
            registries(context)

        load_additional_registries.engine_set_up = True
        cpu.CPUContext.load_additional_registries = load_additional_registries
    if all(hasattr(caching.Cache, name) for name in
           ("load_overload", "_load_overload", "_guard_against_spurious_io_errors")):
        caching.Cache.load_overload = _load_cached


_set_up()

__all__ = ["njit", "numba"]
