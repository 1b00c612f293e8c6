"""Compiled kernels: the engine's one implementation of every per-bar rule.

Sizing (`sizing.py`), execution with costs, rounding, cash policy and leverage
(`execution.py`), the profile hooks (`hooks.py`), the phase-ordered loop (`loop.py`) and the
first-in-first-out trades (`trades.py`); booking into the ledger and order-book updates are
kernels of their owners (`engine/core/ledger.py`, `engine/core/book.py`).

Kernels are plain functions over arrays, compiled by numba with `cache=True`, so a new
process loads the machine code from disk. With `NUMBA_DISABLE_JIT=1` they run as the
plain Python they are written in (a debugger can step through them; CI runs the engine's
tests that way too).
"""

from __future__ import annotations

from numba import njit

REL_TOL = 1e-9  # two floats within 1e-9 of the larger are the same amount
ABS_TOL = 1e-12  # ... or within 1e-12 of each other
NEVER = 2**62  # a bar after every bar


def kernel(function):
    """Compile `function` with numba, cached on disk (plain Python under NUMBA_DISABLE_JIT)."""
    return njit(cache=True)(function)


@kernel
def close_enough(a: float, b: float) -> bool:
    """Equal, or within `max(1e-9 × max(|a|, |b|), 1e-12)`: the engine's one float rule."""
    return a == b or abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@kernel
def cancels(before: float, change: float, total: float) -> bool:
    """Whether `total` (= before + change) is float dust: the rule for exactly zero."""
    return abs(total) <= max(REL_TOL * max(abs(before), abs(change)), ABS_TOL)
