"""The resting orders' fill pass of one bar: which are reached, in what order, and booking.

`resting_pass` fills the bar's reached orders (`matching.py`) in phase order (ties by id;
with `stop_first` the stops of an OCO group first, `trial_order`), each executed alone
against the cash left and booked at once through the ledger and the book
(`fill_in_order`), within the asset's share of the bar's volume (`budget`); then trailing
references move and orders past `valid_until` expire. A pass that finds no resting order
returns at once.
"""

from __future__ import annotations

import numpy as np

from engine.core.book import (
    cancel_asset_nb,
    cancel_group_nb,
    close_resting_nb,
    fill_part_resting_nb,
    release_children_nb,
    set_reference_nb,
    set_triggered_nb,
    sweep_nb,
)
from engine.core.kernels import kernel
from engine.core.kernels.execution import execute_batch, with_slippage
from engine.core.kernels.hooks import still_open
from engine.core.kernels.matching import NO_FILL, STOP_PASSED, match, match_close
from engine.core.ledger import apply_fills_nb, book_value
from engine.core.records import IntrabarPath, OrderStatus, OrderType, Origin, Reason

ALL, BEFORE_MARKET, AFTER_MARKET = 0, 1, 2  # which of a bar's orders a pass tries


@kernel
def in_part(part: int, oid: int, split: int) -> bool:
    """Whether a pass of `part` tries order `oid` of an asset whose due market order (at a
    close fill under the `close` path) has id `split` (NEVER: none)."""
    if part == BEFORE_MARKET:
        return oid < split
    if part == AFTER_MARKET:
        return oid > split
    return True


@kernel
def resting_pass(s, bar, part, split, budget, stopped, bars, valuation, ledger, book) -> None:
    """Fill the resting orders reached in bar `bar`, move trailing references, expire.

    Orders are tried in the order their conditions are met along the path (ties by id;
    stops first with `stop_first`); each fill is executed alone against the cash left
    (costs, rounding, cash policy as for market orders), booked, and cancels its OCO group.
    A risk rule's exit closes the position held then; it waits while the position is flat
    or on the other side (the end of the bar cancels it, `position_rules`).

    Under the `close` path every order is at the close, in id order; with close fills the
    loop runs `BEFORE_MARKET` (ids below the asset's due market order, `split`), the market
    batch, then `AFTER_MARKET`, so an asset's orders take the close in placement order.
    `budget` is each asset's shares left under the volume cap (inf without one); `stopped`
    marks an asset whose budget an order found spent (its later orders wait). References
    move and orders expire after `ALL` or `AFTER_MARKET`.
    """
    orders, resting, n_resting = book.orders, book.resting, book.n_resting
    n = n_resting[0]
    if n == 0:
        return
    open_, high, low = bars.open[bar], bars.high[bar], bars.low[bar]
    close, has_bar = bars.close[bar], bars.has_bar[bar]
    on_close = s.intrabar_path == IntrabarPath.close
    ids = np.empty(n, dtype=np.int64)
    phases = np.empty(n, dtype=np.int64)
    prices = np.empty(n)
    reach = np.ones(n, dtype=np.bool_)
    states = np.full(n, -1, dtype=np.int64)
    count = 0
    for k in range(n):
        oid = resting[k]
        record = orders[oid]
        j = record["asset"]
        if (record["status"] != OrderStatus.open or record["active_from"] > bar
                or not has_bar[j] or not in_part(part, oid, split[j])):
            continue
        if on_close and record["type"] != OrderType.market:
            reached, state = match_close(record, close[j])
            if not reached and state == record["triggered"]:
                continue
            buy = record["amount"] > 0
            phase = 3
            price = with_slippage(close[j], s.slippage, buy)
            reach[count] = reached
            states[count] = state
        else:
            phase, price, triggered = match(s, record, open_[j], high[j], low[j], close[j])
            if triggered and not record["triggered"]:
                set_triggered_nb(orders, oid, STOP_PASSED)
            if phase == NO_FILL:
                continue
        ids[count] = oid
        phases[count] = phase
        prices[count] = price
        count += 1
    if count:
        order = trial_order(s, ids, phases, reach, count, orders)
        fill_in_order(s, bar, ids, order, prices, reach, states, budget, stopped, close,
                      count, valuation, ledger, book)
    if part == BEFORE_MARKET:
        return
    for k in range(n_resting[0]):
        oid = resting[k]
        record = orders[oid]
        j = record["asset"]
        if (record["type"] == OrderType.trailing_stop and record["status"] == OrderStatus.open
                and record["active_from"] <= bar and has_bar[j]):
            buy = record["amount"] > 0
            seen = close[j] if s.trail_close else (low[j] if buy else high[j])
            best = min(record["reference"], seen) if buy else max(record["reference"], seen)
            if not np.isfinite(record["reference"]):
                best = seen  # placed before the asset's first close
            if best != record["reference"]:
                set_reference_nb(orders, oid, best)
    sweep_nb(orders, resting, n_resting, bar)


@kernel
def is_stop_type(kind: int) -> bool:
    return kind == OrderType.stop or kind == OrderType.stop_limit or (
        kind == OrderType.trailing_stop)


@kernel
def trial_order(s, ids, phases, reach, count, orders):
    """Positions of the reached orders `ids[:count]` in the order they are tried.

    Sort key: (phase, id). A time exit (a market order) has the phase of its fill point:
    before every resting order at the open, after them at the close. With `stop_first`, an
    OCO group with a stop-type member (stop, stop-limit, trailing stop) reached in the bar
    moves whole to the earliest phase its reached members have and to its first reached
    stop's id, its stops ahead of their siblings: key (earliest, first stop id, 0 for a
    stop else 1, id). Only members whose condition holds (`reach`) count there; the others
    (under the `close` path, orders whose trigger state moves) keep their (phase, id).
    """
    k0 = np.empty(count, dtype=np.int64)
    k1 = np.empty(count, dtype=np.int64)
    k2 = np.zeros(count, dtype=np.int64)
    for i in range(count):
        record = orders[ids[i]]
        phase = phases[i]
        if record["type"] == OrderType.market:
            phase = -1 if phase == 0 else 4
        k0[i] = phase
        k1[i] = ids[i]
    if s.stop_first:
        for i in range(count):
            record = orders[ids[i]]
            group = record["group"]
            if group < 0 or record["type"] == OrderType.market or not reach[i]:
                continue
            earliest = phases[i]
            anchor = -1
            for m in range(count):
                other = orders[ids[m]]
                if (other["group"] != group or other["type"] == OrderType.market
                        or not reach[m]):
                    continue
                earliest = min(earliest, phases[m])
                if is_stop_type(other["type"]) and (anchor < 0 or ids[m] < anchor):
                    anchor = ids[m]
            if anchor >= 0:
                k0[i] = earliest
                k1[i] = anchor
                k2[i] = 0 if is_stop_type(record["type"]) else 1
    order = np.empty(count, dtype=np.int64)
    for i in range(count):
        j = i
        while j > 0 and trial_before(k0, k1, k2, ids, i, order[j - 1]):
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    return order


@kernel
def trial_before(k0, k1, k2, ids, a, b) -> bool:
    """Whether reached order `a` is tried strictly before `b`."""
    if k0[a] != k0[b]:
        return k0[a] < k0[b]
    if k1[a] != k1[b]:
        return k1[a] < k1[b]
    if k2[a] != k2[b]:
        return k2[a] < k2[b]
    return ids[a] < ids[b]


@kernel
def fill_in_order(s, bar, ids, order, prices, reach, states, budget, stopped, close, count,
                  valuation, ledger, book) -> None:
    """Execute the reached orders one by one in trial order (`order`: positions in `ids`)
    and book each fill (`close`: the bar's closes, for a bracket child's stop base).

    An order of a `stopped` asset is not tried (not even its trigger state, `states`, −1:
    none to set, changes); one whose condition is not met (`reach`) only sets that state.
    A fill takes at most the asset's `budget`; an order that finds it spent stops the
    asset, and one the budget cut short stays open with the rest.
    """
    cash, positions, journal, n_fills = ledger
    orders, resting, n_resting = book.orders, book.resting, book.n_resting
    one = np.zeros(1, dtype=np.int64)
    delta, held, px = np.empty(1), np.empty(1), np.empty(1)
    cap = np.empty(1)
    size, adj, fee = np.empty(1), np.empty(1), np.empty(1)
    status, reason = np.empty(1, dtype=np.int64), np.empty(1, dtype=np.int64)
    asset = np.empty(1, dtype=np.int64)
    oid_out = np.empty(1, dtype=np.int64)
    extra = 0.0
    if s.leverage > 1.0:
        extra = (s.leverage - 1.0) * book_value(cash[0], positions, valuation)
    for i in range(count):
        k = order[i]
        oid = ids[k]
        record = orders[oid]
        if record["status"] != OrderStatus.open:
            continue  # cancelled by an earlier fill of its group this bar
        j = record["asset"]
        if stopped[j]:
            continue
        if states[k] >= 0 and states[k] != record["triggered"]:
            set_triggered_nb(orders, oid, states[k])
        if not reach[k]:
            continue
        if record["origin"] != Origin.user:
            if positions[j] == 0 or positions[j] * record["amount"] > 0:
                continue  # flat or reversed: the end of the bar cancels or resizes it
            delta[0] = -positions[j]
        else:
            delta[0] = record["amount"] - record["filled_quantity"]
        if budget[j] <= 0:
            stopped[j] = True
            continue
        cap[0] = budget[j]
        held[0] = positions[j]
        px[0] = prices[k]
        execute_batch(1, one, delta, held, px, cap, cash[0], extra, s, 0.0, size, adj, fee,
                      status, reason)
        filled = status[0] == OrderStatus.filled
        if filled:
            asset[0] = j
            oid_out[0] = oid
            apply_fills_nb(cash, positions, journal, n_fills, bar, asset, size, adj, fee,
                           oid_out, 1)
            budget[j] -= abs(size[0])
        if still_open(s, delta[0], size[0], cap[0], status[0]):
            fill_part_resting_nb(orders, oid, bar, size[0])
        else:
            close_resting_nb(orders, oid, bar, status[0], reason[0], size[0])
        if filled and record["group"] >= 0:
            cancel_group_nb(orders, resting, n_resting, record["group"], oid, Reason.oco)
        if record["has_children"]:
            base = close[j] if s.stop_base_close else adj[0]
            release_children_nb(orders, resting, n_resting, oid, bar, filled, base)
        if filled and positions[j] == 0 and s.position_rules:
            cancel_asset_nb(orders, resting, n_resting, j, True, Reason.position_closed)
