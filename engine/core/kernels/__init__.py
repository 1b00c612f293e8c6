"""Compiled kernels: the engine's one implementation of every per-bar rule.

Sizing (`sizing.py`), execution with costs, rounding, cash policy and leverage
(`execution.py`), the profile hooks (`hooks.py`), placing every order (`placement.py`), the
portfolio rules checked there (`portfolio_rules.py`), where a resting order fills inside a
bar (`matching.py`), the bar's pass over the resting orders (`fill_pass.py`), the risk
rules' exits of a position (`position_rules.py`), the phase-ordered loop (`loop.py`) and
the first-in-first-out trades (`trades.py`); booking into the ledger and order-book updates
are kernels of their owners (`engine/core/ledger.py`, `engine/core/book.py`). The arrays
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

import numba
import numpy as np
from numba import njit

ENGINE = Path(__file__).resolve().parents[2]
KERNEL_MODULES = (*sorted((ENGINE / "core").rglob("*.py")), ENGINE / "results" / "trades.py",
                  ENGINE / "results" / "holdings.py")


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


@kernel
def _gather_fields(w8, p8, o8, w4, p4, o4, w1, p1, o1) -> None:
    """`o8[k, i] = w8[i, p8[k]]`, and the same from the 4-byte and 1-byte views: a record
    array's fields, widened to 8 bytes, in one pass over the records."""
    for i in range(w8.shape[0]):
        for k in range(len(p8)):
            o8[k, i] = w8[i, p8[k]]
        for k in range(len(p4)):
            o4[k, i] = w4[i, p4[k]]
        for k in range(len(p1)):
            o1[k, i] = w1[i, p1[k]]


def record_columns(records: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Fields `names` of `records` as fresh contiguous columns: 8-byte fields as they are,
    narrower integer fields widened to int64.

    One pass over the records instead of one strided pass per field: a field read alone
    touches every record's cache line, so a wide table's columns cost a pass each.
    """
    fields = records.dtype.fields
    records = np.ascontiguousarray(records)
    n, size = len(records), records.dtype.itemsize
    picks: dict[int, list[str]] = {8: [], 4: [], 1: []}
    for name in names:
        kind, offset = fields[name][0], fields[name][1]
        if kind.itemsize not in picks or offset % kind.itemsize or (
                kind.itemsize != 8 and kind.kind != "i"):
            raise ValueError(f"field {name} is not an aligned 8-byte word or narrower integer")
        picks[kind.itemsize].append(name)
    views = {width: records.view(dtype).reshape(n, size // width)
             for width, dtype in ((8, np.int64), (4, np.int32), (1, np.int8))}
    blocks = {width: np.empty((len(chosen), n), dtype=np.int64)
              for width, chosen in picks.items()}
    offsets = {width: np.array([fields[name][1] // width for name in chosen], dtype=np.int64)
               for width, chosen in picks.items()}
    _gather_fields(*(part for width in (8, 4, 1)
                     for part in (views[width], offsets[width], blocks[width])))
    columns = {}
    for width, chosen in picks.items():
        for k, name in enumerate(chosen):
            kind = fields[name][0]
            columns[name] = blocks[width][k].view(kind) if width == 8 else blocks[width][k]
    return {name: columns[name] for name in names}
