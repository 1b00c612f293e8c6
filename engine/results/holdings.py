"""Holdings at every bar, replayed from the fill journal with the ledger's own rule.

Input: fills (`FILL_DT`) in execution order and the number of bars. Output: one row per
(bar, asset) held at the bar's close, by bar then asset: the position after the bar's
fills, booked fill by fill with `engine.core.ledger.add_position`, so the quantities are
the ledger's bit for bit.
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import kernel
from engine.core.ledger import add_position


@kernel
def _replay(bars, assets, quantity, n_bars, n_assets, out_bar, out_asset, out_quantity):
    """Rows of holdings into the outputs (room for every held asset at every bar from its
    first fill on); returns their number."""
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
                out_bar[rows] = t
                out_asset[rows] = j
                out_quantity[rows] = held[j]
                rows += 1
    return rows


def holdings(fills, n_bars: int, n_assets: int):
    """(bar, asset, quantity) of every holding at every bar's close; `fills` has the
    journal's `bar`, `asset` and `quantity` fields (records or a mapping of columns)."""
    bars = np.ascontiguousarray(fills["bar"])
    assets = np.ascontiguousarray(fills["asset"])
    quantity = np.ascontiguousarray(fills["quantity"])
    first = np.full(n_assets, n_bars, dtype=np.int64)
    np.minimum.at(first, assets, bars)
    room = int(np.maximum(n_bars - first, 0).sum())  # untouched room costs no memory
    out = np.empty(room, np.int64), np.empty(room, np.int64), np.empty(room)
    rows = _replay(bars, assets, quantity, n_bars, n_assets, *out)
    return tuple(column[:rows] for column in out)
