"""numba for the engine's kernels, set up without work they never use.

On its first compile in a process numba imports its array routines, which import
`scipy.linalg` (where scipy is installed: about 0.2 s of CPU, a tenth of a cold
`tradegap backtest`) only to learn whether `np.correlate` and `np.convolve` may call
BLAS. No kernel calls them, nor any other linear algebra, so the routines are imported
here with that probe answering no: those two would run numba's own loop instead of BLAS.
`np.dot` and `np.linalg` still find BLAS when they are compiled.
"""

from __future__ import annotations

import sys

import numba
from numba import njit

ARRAY_ROUTINES = "numba.np.arraymath"


def _no_blas() -> None:
    raise ImportError("BLAS not probed for the engine's kernels")


def _import_array_routines() -> None:
    """Import numba's array routines with their BLAS probe answering no, unless they (or
    scipy's linear algebra, which makes the probe cheap) are loaded already."""
    if ARRAY_ROUTINES in sys.modules or "scipy.linalg" in sys.modules:
        return
    import numba.np.linalg as linalg

    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:  # a numba without the probe: nothing to skip
        return
    linalg.ensure_blas = _no_blas
    try:
        __import__(ARRAY_ROUTINES)
    finally:
        linalg.ensure_blas = probe


_import_array_routines()

__all__ = ["njit", "numba"]
