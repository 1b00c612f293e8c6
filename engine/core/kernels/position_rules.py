"""The risk rules of a position: its exits (`stop_loss`, `take_profit`, `trailing_stop`,
`time_exit`) placed after the fill that opens it, resized when it changes, cancelled when
it is flat (docs/semantics.md, "Risk-rule exits").
"""

from __future__ import annotations

import numpy as np

from engine.core.book import cancel_asset_nb, update_rules_nb
from engine.core.kernels import NEVER, kernel
from engine.core.kernels.placement import place_order
from engine.core.ledger import add_position
from engine.core.records import (
    Decision,
    OrderKind,
    OrderSpec,
    OrderType,
    Origin,
    Reason,
    TrailMode,
)


@kernel
def position_rules(s, bar, first_fill, ledger, held, close, last_fill, book) -> None:
    """After the fills of a bar from journal row `first_fill`, replayed in order from `held`
    (the positions before them; updated here): a fill that opens a position from flat, or
    reverses one, gives it new exits at the stop base (that fill's price, or the bar's
    close), the exits of the position it replaces (reversed, or closed by an earlier fill
    of the bar) cancelled (`position_closed`). Then, in one pass, the exits of every asset
    the fills moved are cancelled where the position is flat and resized to it elsewhere.
    `last_fill` is −1 over the assets, and is again on return."""
    if not s.position_rules:
        return
    positions, journal = ledger.positions, ledger.journal
    end = ledger.n_fills[0]
    for i in range(first_fill, end):
        j = journal[i]["asset"]
        before = held[j]
        after = add_position(before, journal[i]["quantity"])
        moved_before = last_fill[j] != -1  # an earlier fill of this bar (it may have closed)
        held[j] = after
        last_fill[j] = i
        if after != 0 and before * after <= 0:
            if before != 0 or moved_before:
                cancel_asset_nb(book.orders, book.resting, book.n_resting, j, True,
                                Reason.position_closed)
            base = close[j] if s.stop_base_close else journal[i]["price"]
            place_rules(s, Decision(bar, np.nan, np.nan, held, close), j, after, base, book)
    update_rules_nb(book.orders, book.resting, book.n_resting, positions, last_fill)
    for i in range(first_fill, end):
        last_fill[journal[i]["asset"]] = -1


@kernel
def place_rules(s, at, asset, q, base, book) -> None:
    """The exits of a position of `q` shares entered at `bar` at `base`: one OCO group."""
    long = q > 0
    bar = at.bar  # the rules' exits are never checked: `at` names the bar only
    group = -2
    if s.stop_loss > 0:
        level = base * (1.0 - s.stop_loss) if long else base * (1.0 + s.stop_loss)
        group = place_order(s, at, OrderSpec(asset, OrderKind.shares, OrderType.stop, -q,
                                             np.nan, level, np.nan, 0, np.nan, NEVER,
                                             bar + 1, -1, group, Origin.stop_loss), book)
    if s.take_profit > 0:
        level = base * (1.0 + s.take_profit) if long else base * (1.0 - s.take_profit)
        oid = place_order(s, at, OrderSpec(asset, OrderKind.shares, OrderType.limit, -q,
                                           level, np.nan, np.nan, 0, np.nan, NEVER,
                                           bar + 1, -1, group, Origin.take_profit), book)
        group = oid if group == -2 else group
    if s.trailing_stop > 0:
        oid = place_order(s, at, OrderSpec(asset, OrderKind.shares, OrderType.trailing_stop,
                                           -q, np.nan, np.nan, s.trailing_stop,
                                           TrailMode.percent, base, NEVER, bar + 1, -1,
                                           group, Origin.trailing_stop), book)
        group = oid if group == -2 else group
    if s.max_bars > 0:
        place_order(s, at, OrderSpec(asset, OrderKind.shares, OrderType.market, -q, np.nan,
                                     np.nan, np.nan, 0, np.nan, NEVER, bar + s.max_bars, -1,
                                     group, Origin.time_exit), book)
