"""Resting orders in the reference: limit, stop, stop-limit and trailing stop, one at a time.

A resting order waits in the book until its price condition is met inside a bar, it
expires, or it is cancelled (docs/semantics.md, "Resting orders and risk rules"). This
module holds the order itself and the pure per-order rules; `simulation.py` books fills.

- `Resting`: one order (user row, bracket child or risk-rule exit) and its state: the
  trailing reference (`peak`, the extreme it follows), whether a stop-limit has triggered.
- `event(order, bar, path, rules)`: where in bar `bar` the order fills, as
  `(phase, price)` or None. Phases follow the bar's path: -1 a market exit at the open
  (time exits), 0 the open (gaps), 1 the first extreme, 2 the second extreme, 3 the close
  (a stop-limit whose limit is only reached on the way to the close), 4 a market exit at
  the close (time exits under close fills).
- `path_of(bar, intrabar_path)`: which extreme comes first.
- `at_close(order, close, buy)`: under the `close` path (zipline's), whether the order's
  condition holds at the bar's close, its trigger state moving as zipline's does.
- `to_tick(price, prefer_down, tick)`: a level rounded to the tick as zipline rounds it.
- `order_table_rows(frame)`: the rows of an order table (`timestamp, asset, type,
  quantity, limit_price, stop_price, trail, trail_mode, valid_until, group, id, parent`),
  checked and in row order.

Scope: long and short sides mirror each other; a stop's slippage is capped at the bar's
high (a buy) or floored at its low (a sell); limits and stop-limits fill without slippage;
every fill price lies in [low, high]. The risk rules' orders (`stop_loss`, `take_profit`,
`trailing_stop`, `time_exit`) are `Resting` orders with `close_position` set: they sell (or
buy back) the whole position when they fill.

Where docs/semantics.md's contract is silent, the simulation follows the one list of
decisions there ("Decisions the contract above leaves open": phases and ties,
`stop_first` inside OCO groups, one fill at a time, rule exits following each fill, the
time exit at bar entry + N, portfolio rules against the planned positions, merged and
replaced bracket entries, ...), which the engine follows too. In this module: a `market`
row is a `shares` order call (netted with the asset's open market order), and
`order_table_rows` refuses `valid_until` or `group` on it, as the engine's order-table
gate does.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from engine.reference.bars import CLOSE, HIGH, LOW, OPEN

TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
STOP_TYPES = ("stop", "stop_limit", "trailing_stop")
RULE_TRIGGERS = ("stop_loss", "take_profit", "trailing_stop", "time_exit")
PATHS = ("nearest", "ohlc", "olhc", "close")
STOP_BASES = ("fill", "close")
TRAIL_SOURCES = ("high_low", "close")
TRAIL_MODES = ("percent", "absolute")
TIME_EXIT, OPEN_PHASE, FIRST, SECOND, AT_CLOSE, CLOSE_EXIT = -1, 0, 1, 2, 3, 4


@dataclass(slots=True)
class Resting:
    """One resting order. `quantity` is signed shares (None: the whole position, a rule's
    exit); `live_from` is the first bar it is tried at (None: a bracket child whose parent
    has not filled yet); `last_bar` the last bar it may fill at (None: good till
    cancelled); `group` its OCO group (None: none)."""

    id: int
    asset: str
    type: str
    quantity: float | None
    created: int
    live_from: int | None
    last_bar: int | None = None
    limit: float | None = None
    stop: float | None = None
    trail: float | None = None
    trail_mode: str = "percent"
    group: Any = None
    parent: int | None = None  # the parent's order id (a bracket child)
    trigger: str = ""  # what the fill reports: the type, or the risk rule
    peak: float = math.nan  # trailing reference: highest (sell) or lowest (buy) price seen
    triggered: bool = False  # a stop-limit whose stop was reached: now a limit
    reached: bool = False  # `close` path: its condition held on a close; it keeps filling
    filled: float = 0.0  # shares filled so far (the volume cap can cut a fill short)
    status: str = "open"
    reason: str | None = None
    # a rule's exit stays on the side of the position it was armed for (True: it buys),
    # as a stop placed to protect a long stays a sell: it is cancelled (and armed again)
    # where a fill closes or reverses that position, whatever the book believes later
    side: bool | None = None

    @property
    def close_position(self) -> bool:
        return self.quantity is None

    def is_buy(self, position: float) -> bool:
        """A rule's exit buys when the position it was armed for is short (without that
        record, when the position is)."""
        if self.quantity is None:
            return position < 0 if self.side is None else self.side
        return self.quantity > 0

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    def trailing_level(self, buy: bool, peak: float | None = None) -> float:
        """The trailing stop's level from its reference (or `peak`): below it for a sell."""
        peak = self.peak if peak is None else peak
        if self.trail_mode == "absolute":
            return peak + self.trail if buy else peak - self.trail
        return peak * (1 + self.trail) if buy else peak * (1 - self.trail)

    def follow(self, bar: tuple, buy: bool, trail_source: str) -> None:
        """Move the trailing reference after a bar in which the order was tried."""
        if buy:
            seen = bar[CLOSE] if trail_source == "close" else bar[LOW]
            self.peak = min(self.peak, seen)
        else:
            seen = bar[CLOSE] if trail_source == "close" else bar[HIGH]
            self.peak = max(self.peak, seen)


def to_tick(price: float, prefer_down: bool, tick: float) -> float:
    """`price` rounded to a multiple of `tick` the way zipline's `asymmetric_round_price`
    does: to the lower tick unless within 0.05 tick of the upper one when `prefer_down`
    (a buy limit, a sell stop), mirrored otherwise; a half goes up (`consistent_round`)."""
    shift = (0.95 - 0.5) * tick - sys.float_info.epsilon * 10
    ticks = (price - shift if prefer_down else price + shift) / tick
    whole = math.ceil(ticks) if ticks % 1 >= 0.5 else math.floor(ticks)
    return tick * whole


def at_close(order: Resting, close: float, buy: bool) -> bool:
    """Whether the order fills at this close under the `close` path, as zipline's
    `check_order_triggers` reads it: a buy limit at `close ≤ limit`, a buy stop (or a
    trailing stop's level) at `close ≥ stop`, sells mirrored; a stop-limit whose stop holds
    becomes a limit (`triggered`) checked on the same close. Once it holds, it holds
    (`reached`): a fill the volume cap cut short goes on at later closes."""
    if order.reached:
        return True
    if order.type == "stop_limit" and not order.triggered:
        if not (close >= order.stop if buy else close <= order.stop):
            return False
        order.triggered = True
    if order.type in ("limit", "stop_limit"):
        holds = close <= order.limit if buy else close >= order.limit
    else:
        level = order.trailing_level(buy) if order.type == "trailing_stop" else order.stop
        holds = close >= level if buy else close <= level
    order.reached = holds
    return holds


def path_of(bar: tuple, intrabar_path: str) -> tuple[int, int]:
    """(phase of the high, phase of the low) on the bar's path.

    `nearest`: the extreme nearer the open comes first (the high on a tie); `ohlc`: the
    high first; `olhc`: the low first.
    """
    if intrabar_path == "ohlc":
        high_first = True
    elif intrabar_path == "olhc":
        high_first = False
    else:
        high_first = bar[HIGH] - bar[OPEN] <= bar[OPEN] - bar[LOW]
    return (FIRST, SECOND) if high_first else (SECOND, FIRST)


def _stop(buy: bool, level: float, bar: tuple, intrabar_path: str,
          at_level: bool = False) -> tuple[int, float] | None:
    """A stop at `level`: at the open if it gapped past, else at the extreme that reaches
    it (its phase on the path, read only then)."""
    o, h, low = bar[OPEN], bar[HIGH], bar[LOW]
    if buy:
        if o >= level:
            return OPEN_PHASE, level if at_level else o
        if h >= level:
            return path_of(bar, intrabar_path)[0], level
        return None
    if o <= level:
        return OPEN_PHASE, level if at_level else o
    if low <= level:
        return path_of(bar, intrabar_path)[1], level
    return None


def _limit(buy: bool, price: float, bar: tuple, intrabar_path: str,
           at_level: bool = False) -> tuple[int, float] | None:
    """A limit at `price`, as `_stop` with the sides turned."""
    o, h, low = bar[OPEN], bar[HIGH], bar[LOW]
    if buy:
        if o <= price:
            return OPEN_PHASE, price if at_level else o
        if low <= price:
            return path_of(bar, intrabar_path)[1], price
        return None
    if o >= price:
        return OPEN_PHASE, price if at_level else o
    if h >= price:
        return path_of(bar, intrabar_path)[0], price
    return None


def reaches(kind: str, buy: bool, level: float, bar: tuple) -> bool:
    """Whether a `stop` or `limit` at `level` can fill in `bar` at all (on any path, at its
    close too: every price of a bar lies between its low and high)."""
    return (_stop if kind == "stop" else _limit)(buy, level, bar, "ohlc") is not None


def event(order: Resting, bar: tuple, buy: bool, intrabar_path: str, gap_fill: str = "open",
          at_close: bool = False, bar_ticks: bool = False) -> tuple[int, float, bool] | None:
    """Where the order fills in `bar`: (phase, price before slippage, slipped), or None.

    `bar_ticks` (the `nautilus` profile) sees the bar as its four prices (`_on_ticks`).

    `gap_fill` "level" (a departure the gap analysis replays, not a setting) fills a limit,
    stop or trailing stop whose level the open gapped past at the level, not the open.

    `slipped` says whether the cost model's slippage applies (market and stop-market
    fills) or not (limit fills). A market order (a time exit) fills at the open before
    every resting order, or with `at_close` (close fills) at the close after them. A
    stop-limit that triggers without filling is marked `triggered` (it rests as a limit
    from then on).
    """
    if order.type == "market":  # a time exit, at the fill point of market orders
        return (CLOSE_EXIT, bar[CLOSE], True) if at_close else (TIME_EXIT, bar[OPEN], True)
    if bar_ticks:
        return _on_ticks(order, bar, buy, path_of(bar, intrabar_path)[0])
    at_level = gap_fill == "level"
    if order.type == "limit" or (order.type == "stop_limit" and order.triggered):
        hit = _limit(buy, order.limit, bar, intrabar_path, at_level and order.type == "limit")
        return None if hit is None else (*hit, False)
    if order.type == "stop":
        hit = _stop(buy, order.stop, bar, intrabar_path, at_level)
        return None if hit is None else (*hit, True)
    if order.type == "trailing_stop":
        hit = _stop(buy, order.trailing_level(buy), bar, intrabar_path, at_level)
        return None if hit is None else (*hit, True)
    return _stop_limit(order, bar, buy, *path_of(bar, intrabar_path), intrabar_path)


def _on_ticks(order: Resting, bar: tuple, buy: bool, high_phase: int
              ) -> tuple[int, float, bool] | None:
    """The bar as nautilus executes it: four trade prices (open, the extremes in path
    order, close), each a point where orders are matched and filled at their own level.

    A limit fills at its limit at the first price at or beyond it; a stop at its stop at
    the first price at or beyond the stop; a stop-limit, once a price reached its stop,
    fills at the first price (that one included) within its limit: at the stop if that is
    the price that triggered it, else at that price held back to the nearer of its limit
    and stop (for a buy, no lower than the lesser of the two). A trailing stop checked at
    the k-th price has trailed the prices up to the (k − 2)-th: nautilus moves it after
    each price's matching, from the price before. Nothing slips.
    """
    first, second = (bar[HIGH], bar[LOW]) if high_phase == FIRST else (bar[LOW], bar[HIGH])
    prices = [bar[OPEN], first, second, bar[CLOSE]]
    peak = order.peak
    for phase, price in enumerate(prices):
        if order.type == "limit":
            if (price <= order.limit) if buy else (price >= order.limit):
                return phase, order.limit, False
            continue
        if order.type == "stop_limit":
            triggering = not order.triggered and (
                price >= order.stop if buy else price <= order.stop)
            order.triggered = order.triggered or triggering
            if order.triggered and ((price <= order.limit) if buy else (price >= order.limit)):
                if triggering:  # matched as it triggers: a taker fill at the stop
                    return phase, order.stop, False
                # a maker fill later: this price, but never better than the nearer bound
                if buy:
                    return phase, max(price, min(order.limit, order.stop)), False
                return phase, min(price, max(order.limit, order.stop)), False
            continue
        level = order.stop
        if order.type == "trailing_stop":
            if phase >= 2:
                older = prices[phase - 2]
                peak = min(peak, older) if buy else max(peak, older)
            level = order.trailing_level(buy, peak)
        if (price >= level) if buy else (price <= level):
            return phase, level, False
    return None


def _stop_limit(order: Resting, bar: tuple, buy: bool, high_phase: int, low_phase: int,
                intrabar_path: str) -> tuple[int, float, bool] | None:
    """A stop-limit: at a gap, a limit from the open; triggered inside the bar, a fill at
    the trigger if it satisfies the limit, else at the limit if the rest of the path
    reaches it, else it rests as a limit."""
    o, h, low, c = bar[OPEN], bar[HIGH], bar[LOW], bar[CLOSE]
    stop, limit = order.stop, order.limit
    gapped = o >= stop if buy else o <= stop
    if gapped:
        order.triggered = True
        hit = _limit(buy, limit, bar, intrabar_path)
        return None if hit is None else (*hit, False)
    reached = h >= stop if buy else low <= stop
    if not reached:
        return None
    order.triggered = True
    trigger_phase = high_phase if buy else low_phase
    if (stop <= limit) if buy else (stop >= limit):
        return trigger_phase, stop, False
    # The limit is on the far side of the trigger: the rest of the path must come back.
    if trigger_phase == FIRST:  # the other extreme follows, then the close
        rest = low if buy else h
        if (rest <= limit) if buy else (rest >= limit):
            return SECOND, limit, False
        return None
    if (c <= limit) if buy else (c >= limit):
        return AT_CLOSE, limit, False
    return None


def stop_fill_price(price: float, buy: bool, bar: tuple, slippage: float) -> float:
    """A stop-market (or market) fill with slippage against the trader, inside [L, H]."""
    if buy:
        return min(price * (1 + slippage), bar[HIGH])
    return max(price * (1 - slippage), bar[LOW])


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def order_table_rows(frame: Any) -> list[dict[str, Any]]:
    """The rows of an order table as dicts with every column (None where empty).

    Raises ValueError on a type outside `TYPES`, a zero quantity, a missing price for the
    type, `valid_until` or `group` on a market row, or a `parent` that names no earlier
    row's `id`.
    """
    columns = ("timestamp", "asset", "type", "quantity", "limit_price", "stop_price",
               "trail", "trail_mode", "valid_until", "group", "id", "parent")
    missing = [c for c in ("timestamp", "asset", "type", "quantity") if c not in frame.columns]
    if missing:
        raise ValueError(f"order table lacks columns: {', '.join(missing)}")
    data = {c: frame[c].to_list() if c in frame.columns else [None] * frame.height
            for c in columns}
    rows, ids = [], set()
    for i in range(frame.height):
        row = {c: (None if _blank(data[c][i]) else data[c][i]) for c in columns}
        kind = row["type"]
        if kind not in TYPES:
            raise ValueError(f"order type must be one of {', '.join(TYPES)}; got {kind!r}")
        if row["quantity"] is None or float(row["quantity"]) == 0.0:
            raise ValueError(f"row {i}: quantity must be a non-zero number of shares")
        needs = {"limit": ("limit_price",), "stop": ("stop_price",),
                 "stop_limit": ("limit_price", "stop_price"), "trailing_stop": ("trail",)}
        for name in needs.get(kind, ()):
            if row[name] is None:
                raise ValueError(f"row {i}: a {kind} order needs {name}")
        mode = row["trail_mode"] or "percent"
        if mode not in TRAIL_MODES:
            raise ValueError(f"row {i}: trail_mode must be percent or absolute; got {mode!r}")
        row["trail_mode"] = mode
        if kind == "market" and (row["valid_until"] is not None or row["group"] is not None):
            raise ValueError(f"row {i}: valid_until and group apply to resting orders, not "
                             "market")
        if row["parent"] is not None and kind == "market":
            raise ValueError(f"row {i}: a bracket child must be a resting order, not market")
        if row["parent"] is not None and row["parent"] not in ids:
            raise ValueError(f"row {i}: parent {row['parent']!r} names no earlier row's id")
        if row["id"] is not None:
            ids.add(row["id"])
        rows.append(row)
    return rows


def last_bar_of(valid_until: Any, created: int, timestamps: list[datetime]) -> int | None:
    """The last bar an order decided at bar `created` may fill at: `created + n` for a
    number of bars n, the last bar at or before a timestamp, None when empty (GTC)."""
    if valid_until is None:
        return None
    if isinstance(valid_until, (datetime, date)):
        stamp = valid_until if isinstance(valid_until, datetime) else datetime(
            valid_until.year, valid_until.month, valid_until.day)
        last = -1
        for i, t in enumerate(timestamps):
            if t <= stamp:
                last = i
        return last
    bars = float(valid_until)
    if bars < 0 or bars != int(bars):
        raise ValueError(f"valid_until must be a whole number of bars; got {valid_until!r}")
    return created + int(bars)
