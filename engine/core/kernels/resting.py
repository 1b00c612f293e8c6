"""Resting orders inside a bar: where each one fills, in what order, and the risk rules.

The bar's price path is the open, then the two extremes in the order `intrabar_path` says
(`nearest`: the extreme nearer the open first), then the close. `match` finds the phase at
which a resting order's condition is met (0 the open, 1 the first extreme, 2 the second, 3
the way to the close) and its fill price (docs/semantics.md, "Fill prices"); under the
`close` path `match_close` checks an order against the close alone (zipline's way, a met
condition sticky); `resting_pass` fills the bar's orders in phase order (ties by id; with
`stop_first` the stops first), each booked at once through the ledger and the book, within
the asset's share of the bar's volume (`budget`). A pass that finds no resting order
returns at once. `position_rules` gives a position its exits (`stop_loss`, ...) after the
fills that open it (placed through `placement.place_rules`), resizes them when it
changes and cancels them when it is flat.
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
    update_rules_nb,
)
from engine.core.kernels import kernel
from engine.core.kernels.execution import execute_batch, with_slippage
from engine.core.kernels.hooks import still_open
from engine.core.kernels.placement import place_rules
from engine.core.ledger import add_position, apply_fills_nb, book_value
from engine.core.records import (
    FillTiming,
    IntrabarPath,
    OrderStatus,
    OrderType,
    Origin,
    Reason,
    TrailMode,
)

NO_FILL = -1
GAP_TOL = 1e-12  # a level within this of a price is reached
ALL, BEFORE_MARKET, AFTER_MARKET = 0, 1, 2  # which of a bar's orders a pass tries
STOP_PASSED, REACHED = 1, 2  # `triggered` states (records.py)


@kernel
def extreme_phases(path: int, o: float, h: float, low: float):
    """(phase of the high, phase of the low) on the bar's path: 1 and 2 in some order.
    `nearest` takes the high first on a tie."""
    if path == IntrabarPath.ohlc:
        return 1, 2
    if path == IntrabarPath.olhc:
        return 2, 1
    return (1, 2) if h - o <= o - low else (2, 1)


@kernel
def limit_fill(buy: bool, level: float, o, h, low, ph, pl):
    """(phase, price) of a limit at `level`: the open when it is already better, else the
    level when the bar reaches it; no slippage."""
    if buy:
        if o <= level:
            return 0, o
        if low <= level:
            return pl, level
    else:
        if o >= level:
            return 0, o
        if h >= level:
            return ph, level
    return NO_FILL, np.nan


@kernel
def stop_trigger(buy: bool, level: float, o, h, low, ph, pl):
    """(phase, price) at which a stop at `level` triggers: the open on a gap past it, else
    the level when the bar reaches it."""
    if buy:
        if o >= level:
            return 0, o
        if h >= level:
            return ph, level
    else:
        if o <= level:
            return 0, o
        if low <= level:
            return pl, level
    return NO_FILL, np.nan


@kernel
def slipped(buy: bool, price: float, slippage: float, h: float, low: float) -> float:
    """A stop's fill price moved against the trader, never outside [low, high]."""
    moved = with_slippage(price, slippage, buy)
    return min(moved, h) if buy else max(moved, low)


@kernel
def trail_level(buy: bool, reference: float, trail: float, mode: int) -> float:
    """A trailing stop's level from its reference (peak for a sell, trough for a buy)."""
    if mode == TrailMode.absolute:
        return reference + trail if buy else reference - trail
    return reference * (1.0 + trail) if buy else reference * (1.0 - trail)


@kernel
def match(s, record, o, h, low, c):
    """(phase, price, newly triggered) of one resting order in one bar; phase −1: no fill.

    A stop-limit triggered inside the bar fills at its trigger if that satisfies the limit,
    else at the limit if the rest of the path reaches it; triggered, it is a limit after.
    """
    buy = record["amount"] > 0
    kind = record["type"]
    ph, pl = extreme_phases(s.intrabar_path, o, h, low)
    if kind == OrderType.limit or (kind == OrderType.stop_limit and record["triggered"]):
        phase, price = limit_fill(buy, record["limit_price"], o, h, low, ph, pl)
        return phase, price, False
    if kind == OrderType.stop or kind == OrderType.trailing_stop:
        level = record["stop_price"]
        if kind == OrderType.trailing_stop:
            level = trail_level(buy, record["reference"], record["trail"], record["trail_mode"])
        phase, price = stop_trigger(buy, level, o, h, low, ph, pl)
        if phase == NO_FILL:
            return phase, price, False
        return phase, slipped(buy, price, s.slippage if s.stop_slippage else 0.0, h, low), False
    if kind == OrderType.stop_limit:
        phase, at = stop_trigger(buy, record["stop_price"], o, h, low, ph, pl)
        if phase == NO_FILL:
            return phase, at, False
        limit = record["limit_price"]
        if phase == 0:
            phase, price = limit_fill(buy, limit, o, h, low, ph, pl)
            return phase, price, True
        if (at <= limit) if buy else (at >= limit):
            return phase, at, True
        # the rest of the path after the trigger: the other extreme, then the close
        rest = (low if buy else h) if phase == 1 else c
        if (rest <= limit) if buy else (rest >= limit):
            return phase + 1, limit, True
        return NO_FILL, np.nan, True
    # market (a time exit): at the fill point of market orders
    if s.fill == FillTiming.next_open:
        return 0, slipped(buy, o, s.slippage, h, low), False
    return 3, slipped(buy, c, s.slippage, h, low), False


@kernel
def match_close(record, c):
    """(reached, state) of one resting order checked against the close `c` alone.

    zipline's `check_order_triggers`: a buy limit is reached at `c ≤ limit`, a buy stop at
    `c ≥ stop` (sells mirrored); a stop-limit whose stop holds is a limit from then on
    (`STOP_PASSED`) and its limit is checked on the same close; an order once reached stays
    reached (`REACHED`) and fills at every later close until it is done.
    """
    state = record["triggered"]
    if state == REACHED:
        return True, state
    buy = record["amount"] > 0
    kind = record["type"]
    if kind == OrderType.stop_limit and state != STOP_PASSED:
        stop = record["stop_price"]
        if not ((c >= stop) if buy else (c <= stop)):
            return False, state
        state = STOP_PASSED
    if kind == OrderType.limit or kind == OrderType.stop_limit:
        limit = record["limit_price"]
        reached = (c <= limit) if buy else (c >= limit)
    else:
        level = record["stop_price"]
        if kind == OrderType.trailing_stop:
            level = trail_level(buy, record["reference"], record["trail"], record["trail_mode"])
        reached = (c >= level) if buy else (c <= level)
    return reached, REACHED if reached else state


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
def resting_pass(s, bar, part, split, budget, stopped, open_, high, low, close, has_bar,
                 valuation, cash, positions, journal, n_fills, orders, resting,
                 n_resting) -> None:
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
    n = n_resting[0]
    if n == 0:
        return
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
                      count, valuation, cash, positions, journal, n_fills, orders, resting,
                      n_resting)
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
                  valuation, cash, positions, journal, n_fills, orders, resting,
                  n_resting) -> None:
    """Execute the reached orders one by one in trial order (`order`: positions in `ids`)
    and book each fill (`close`: the bar's closes, for a bracket child's stop base).

    An order of a `stopped` asset is not tried (not even its trigger state, `states`, −1:
    none to set, changes); one whose condition is not met (`reach`) only sets that state.
    A fill takes at most the asset's `budget`; an order that finds it spent stops the
    asset, and one the budget cut short stays open with the rest.
    """
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


@kernel
def position_rules(s, bar, first_fill, journal, n_fills, positions, held, close, last_fill,
                   book) -> None:
    """After the fills of a bar from journal row `first_fill`, replayed in order from `held`
    (the positions before them; updated here): a fill that opens a position from flat, or
    reverses one, gives it new exits at the stop base (that fill's price, or the bar's
    close), the exits of the position it replaces (reversed, or closed by an earlier fill
    of the bar) cancelled (`position_closed`). Then, in one pass, the exits of every asset
    the fills moved are cancelled where the position is flat and resized to it elsewhere.
    `last_fill` is −1 over the assets, and is again on return."""
    if not s.position_rules:
        return
    end = n_fills[0]
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
            place_rules(s, bar, j, after, base, book)
    update_rules_nb(book.orders, book.resting, book.n_resting, positions, last_fill)
    for i in range(first_fill, end):
        last_fill[journal[i]["asset"]] = -1


