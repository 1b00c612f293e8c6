"""Where a resting order fills inside one bar: the phase of the bar's path and the price.

The bar's price path is the open, then the two extremes in the order `intrabar_path` says
(`nearest`: the extreme nearer the open first), then the close. `match` finds the phase at
which a resting order's condition is met (0 the open, 1 the first extreme, 2 the second, 3
the way to the close) and its fill price (docs/semantics.md, "Fill prices"); under the
`close` path `match_close` checks an order against the close alone (zipline's way, a met
condition sticky).
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import kernel
from engine.core.kernels.execution import with_slippage
from engine.core.records import FillTiming, IntrabarPath, OrderType, TrailMode

NO_FILL = -1
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
def match_ticks(record, buy: bool, points):
    """(phase, price, newly triggered) of one resting order on a bar seen as four prices,
    nautilus's bar execution: `points` are the open, the two extremes in path order and
    the close (phases 0–3). A limit fills at its limit at the first point at or past it, a
    stop at its trigger; a stop-limit triggers at a point past its stop and fills at the
    first point from there that meets its limit: at the stop when that is the triggering
    point, else at that point bounded by the nearer of its limit and stop (a buy: no lower
    than it; nautilus's maker fill); a trailing level is trailed from the reference and
    the points two or more before the one it is checked at (nautilus trails after each
    tick's matching, from the tick before)."""
    kind = record["type"]
    limit, stop = record["limit_price"], record["stop_price"]
    reference = record["reference"]
    triggered = record["triggered"] != 0
    for k in range(4):
        x = points[k]
        if kind == OrderType.trailing_stop:
            if k >= 2:
                seen = points[k - 2]
                reference = min(reference, seen) if buy else max(reference, seen)
            stop = trail_level(buy, reference, record["trail"], record["trail_mode"])
        if kind == OrderType.limit:
            if (x <= limit) if buy else (x >= limit):
                return k, limit, False
        elif kind == OrderType.stop_limit:
            fresh = not triggered and ((x >= stop) if buy else (x <= stop))
            triggered = triggered or fresh
            if triggered and ((x <= limit) if buy else (x >= limit)):
                if fresh:
                    return k, stop, True
                return k, max(x, min(limit, stop)) if buy else min(x, max(limit, stop)), True
        elif (x >= stop) if buy else (x <= stop):
            return k, stop, False
    return NO_FILL, np.nan, triggered


@kernel
def match(s, record, o, h, low, c):
    """(phase, price, newly triggered) of one resting order in one bar; phase −1: no fill.

    A stop-limit triggered inside the bar fills at its trigger if that satisfies the limit,
    else at the limit if the rest of the path reaches it; triggered, it is a limit after.
    With `bar_ticks` (nautilus) the bar is its four prices (`match_ticks`).
    """
    buy = record["amount"] > 0
    kind = record["type"]
    ph, pl = extreme_phases(s.intrabar_path, o, h, low)
    if s.bar_ticks and kind != OrderType.market:
        first, second = (h, low) if ph == 1 else (low, h)
        return match_ticks(record, buy, (o, first, second, c))
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
