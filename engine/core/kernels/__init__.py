"""Compiled kernels: the engine's one implementation of every per-bar rule.

Sizing (`sizing.py`), execution with costs, rounding, cash policy and leverage
(`execution.py`), the profile hooks (`hooks.py`), placing every order (`placement.py`), the
portfolio rules checked there (`portfolio_rules.py`), where a resting order fills inside a
bar (`matching.py`), the bar's pass over the resting orders (`fill_pass.py`), the risk
rules' exits of a position (`position_rules.py`) and the phase-ordered loop (`loop.py`);
the result tables' passes (engine/results: `columns.py`, `holdings.py`, the
first-in-first-out `trades.py`) and booking into the ledger and order-book updates are
kernels of their owners (`engine/core/ledger.py`, `engine/core/book.py`). The arrays
they share travel as records (`engine/core/records.py`: `BarArrays`, `Schedule`,
`LedgerArrays`, `BookArrays`, `Curves`, `Decision`, `OrderSpec`), numba-compatible named
tuples, instead of long argument lists.

Kernels are plain functions over arrays, compiled by numba with `cache=True`, so a new
process loads the machine code from disk, and `nogil=True`, so threads (a sweep's points)
run them on every core at once. numba keys a cached kernel on its own file only,
so a kernel would keep a changed callee's old code: the cache lives in a folder named by a
digest of every module that holds kernels (`CACHE_DIR`, under `$NUMBA_CACHE_DIR` when set).
With `NUMBA_DISABLE_JIT=1` the kernels run as the plain Python they are written in (a
debugger can step through them; CI runs the engine's tests that way too).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from engine.jit import njit, numba

ENGINE = Path(__file__).resolve().parents[2]
KERNEL_MODULES = (*sorted((ENGINE / "core").rglob("*.py")),
                  *(ENGINE / "results" / f"{name}.py"
                    for name in ("columns", "holdings", "trades")))


def _cache_dir() -> str:
    """Where compiled kernels are cached: one folder per version of the kernel modules."""
    digest = hashlib.sha256()
    for path in KERNEL_MODULES:
        digest.update(path.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR") or Path(__file__).parent / "__pycache__"
    return str(Path(base) / f"kernels-{digest.hexdigest()[:16]}")


CACHE_DIR = _cache_dir()

REL_TOL = 1e-9  # two floats within 1e-9 of the larger are the same amount
ABS_TOL = 1e-12  # ... or within 1e-12 of each other
NEVER = 2**62  # a bar after every bar


def kernel(function=None, *, inline: bool = False):
    """Compile `function` with numba, cached in `CACHE_DIR` (plain Python under
    NUMBA_DISABLE_JIT); `inline=True` inlines it into its compiled callers, for a routine
    called once per order in a loop."""
    if function is None:
        return lambda f: kernel(f, inline=inline)
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = CACHE_DIR
    try:
        return njit(cache=True, nogil=True, inline="always" if inline else "never")(function)
    finally:
        numba.config.CACHE_DIR = previous


@kernel
def close_enough(a: float, b: float) -> bool:
    """Equal, or within `max(1e-9 × max(|a|, |b|), 1e-12)`: the engine's one float rule."""
    return a == b or abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@kernel
def cancels(before: float, change: float, total: float) -> bool:
    """Whether `total` (= before + change) is float dust: the rule for exactly zero."""
    return abs(total) <= max(REL_TOL * max(abs(before), abs(change)), ABS_TOL)


@kernel
def _before(a, b) -> bool:
    """Strictly before in ascending order, NaN last (numpy's order)."""
    return a < b or (b != b and a == a)


@kernel
def argsort_stable(values, count, order, buffer) -> None:
    """`order[:count]` = the positions of `values[:count]` in ascending order, ties kept in
    position order and NaN last: numpy's stable argsort, without allocating (`buffer` has
    room for `count`)."""
    run = 16
    for i in range(count):
        order[i] = i
    for start in range(0, count, run):
        for i in range(start + 1, min(start + run, count)):
            item = order[i]
            j = i
            while j > start and _before(values[item], values[order[j - 1]]):
                order[j] = order[j - 1]
                j -= 1
            order[j] = item
    width = run
    in_order = True
    while width < count:
        src, dst = (order, buffer) if in_order else (buffer, order)
        for left in range(0, count, 2 * width):
            mid, right = min(left + width, count), min(left + 2 * width, count)
            i, j = left, mid
            for k in range(left, right):
                if j < right and (i == mid or _before(values[src[j]], values[src[i]])):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
        in_order = not in_order
        width *= 2
    if not in_order:
        order[:count] = buffer[:count]


def read_only(array: np.ndarray) -> np.ndarray:
    """A view of `array` that cannot be written (its base still can: for a pass that reads
    it at once, not for keeping)."""
    view = array.view()
    view.flags.writeable = False
    return view
