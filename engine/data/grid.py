"""The bars' fast check, compiled: values and timestamps of a long price table in one pass.

A clean table passes here at array speed and is pivoted as it lies; any table that fails
goes through the loader's checks, whose messages name the offending rows
(`engine.data.loading`). Compiled with numba's cache beside this file (the kernel calls
nothing, so its own file is its whole source).
"""

from __future__ import annotations

import threading

import numpy as np
import polars as pl

from engine.jit import njit

NOT_CLEAN = -1  # some bar's values fail a check


def bar_grid(bars: pl.DataFrame) -> int:
    """`_bar_grid` of normalized bars (`timestamp, asset, open, high, low, close,
    volume`), read without copies where polars holds a column in one piece."""
    columns = (bars["timestamp"].to_physical(), *(bars[c] for c in
                                                  ("open", "high", "low", "close", "volume")))
    return _bar_grid(*(_read_only(column.to_numpy()) for column in columns))


def load_in_background() -> threading.Thread:
    """Start loading `_bar_grid`'s compiled code (numba's first load in a process, about
    half a second of its own) on a thread, to overlap a file read that releases the GIL;
    the first real call waits for it under numba's lock."""
    stamps, values = np.zeros(1, np.int64), np.zeros(1)
    thread = threading.Thread(target=_bar_grid, daemon=True, args=(
        _read_only(stamps), *(_read_only(values) for _ in range(5))))
    thread.start()
    return thread


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view (one compiled signature whether polars copied the column or not)."""
    view = values.view()
    view.flags.writeable = False
    return view


@njit(cache=True, nogil=True)
def _bar_grid(stamps, open_, high, low, close, volume) -> int:
    """`NOT_CLEAN` unless every bar has low > 0, high finite, low ≤ open, close ≤ high
    (which makes all four prices finite and positive; NaN fails) and a finite volume ≥ 0;
    then the number of rows of the first timestamp when the timestamps form complete
    blocks of that many rows, the same within a block and increasing from block to block,
    else 0."""
    n = len(stamps)
    for i in range(n):
        o, c, lo, hi, v = open_[i], close[i], low[i], high[i], volume[i]
        if not (lo > 0 and hi < np.inf and lo <= o and lo <= c and hi >= o and hi >= c
                and v >= 0 and v < np.inf):
            return NOT_CLEAN
    width = 0
    while width < n and stamps[width] == stamps[0]:
        width += 1
    if width == 0 or n % width:
        return 0
    for start in range(width, n, width):
        if not stamps[start] > stamps[start - width]:
            return 0
        for i in range(start + 1, start + width):
            if stamps[i] != stamps[start]:
                return 0
    return width
