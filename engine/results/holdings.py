"""Holdings at every bar, replayed from the fill journal with the ledger's own rule.

Input: fills (bar, asset, quantity) in execution order, the bars' times and the last
known closes. Output: one row per (bar, asset) held at the bar's close, by bar then asset:
the time, the asset, the position after the bar's fills, booked fill by fill with
`engine.core.ledger.add_position` (so the quantities are the ledger's bit for bit), and
its market value at the last known close.
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import kernel
from engine.core.ledger import add_position


@kernel
def holdings(bars, assets, quantity, times, last_close):
    """(time, asset, quantity, market value) of every holding at every bar's close, with
    `times` one per bar and `last_close` (bars × assets); built in one replay."""
    n_bars, n_assets = last_close.shape
    first = np.full(n_assets, n_bars, dtype=np.int64)
    for i in range(len(bars)):
        first[assets[i]] = min(first[assets[i]], bars[i])
    room = 0
    for j in range(n_assets):
        room += max(n_bars - first[j], 0)
    out_time = np.empty(room, dtype=np.int64)  # room left untouched costs no memory
    out_asset = np.empty(room, dtype=np.int64)
    out_quantity = np.empty(room)
    out_value = np.empty(room)
    held = np.zeros(n_assets)
    next_fill = 0
    rows = 0
    for t in range(n_bars):
        while next_fill < len(bars) and bars[next_fill] == t:
            a = assets[next_fill]
            held[a] = add_position(held[a], quantity[next_fill])
            next_fill += 1
        for j in range(n_assets):
            if held[j] != 0:
                out_time[rows] = times[t]
                out_asset[rows] = j
                out_quantity[rows] = held[j]
                out_value[rows] = held[j] * last_close[t, j]
                rows += 1
    return out_time[:rows], out_asset[:rows], out_quantity[:rows], out_value[:rows]
