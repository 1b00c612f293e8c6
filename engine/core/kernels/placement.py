"""Placing orders: the one routine every order of the engine goes through.

`place_order` places one order at the close of a decision bar, whoever asks: a callback
strategy (`Context`), an order table's rows (`place_rows`), target weights (`rebalance`),
a bracket's entry and children, or the risk rules' exits of a position (`place_rules`).
It checks a user's entry against the portfolio rules (`entry_verdict`, against the
positions planned at the decision), rounds a user's levels to the profile's tick, puts a
market order into its asset's slot (cancelling the waiting children of an entry a target
replaces) and attaches a bracket child to the order that carries its parent's entry
(`child_state`; docs/semantics.md, "Brackets").
"""

from __future__ import annotations

import numpy as np

from engine.core.book import (
    close_resting_nb,
    entry_of,
    place_nb,
    reject_nb,
    release_children_nb,
    submit_one_nb,
)
from engine.core.kernels import NEVER, kernel
from engine.core.records import (
    Decision,
    FillTiming,
    OrderKind,
    OrderSpec,
    OrderStatus,
    OrderType,
    Origin,
    Reason,
    TrailMode,
)

TICK_EPSILON = 10 * float(np.finfo(np.float64).eps)  # zipline's open bound of a tick's range
WAITING, LIVE, ENDED = 0, 1, 2  # a bracket child when placed (`child_state`)


@kernel
def due_bar(s, bar: int) -> int:
    """First bar at which an order placed at `bar`'s close may fill."""
    return bar if s.fill == FillTiming.same_close else bar + 1


@kernel
def round_level(price: float, prefer_down: bool, tick: float) -> float:
    """zipline's `asymmetric_round_price`: `price` to a multiple of `tick`, towards the
    lower tick unless within 0.05 tick below the upper one (`prefer_down`; mirrored
    otherwise), halves rounded up as its `consistent_round` does."""
    diff = (0.95 - 0.5) * tick - TICK_EPSILON
    v = (price - diff) / tick if prefer_down else (price + diff) / tick
    return tick * (np.ceil(v) if v % 1.0 >= 0.5 else np.floor(v))


@kernel
def placed_level(s, price: float, buy: bool, is_limit: bool) -> float:
    """A user's limit or stop price as the book keeps it: rounded to `tick_size` when the
    profile rounds (a buy limit and a sell stop prefer the lower tick), else as given."""
    if s.tick_size > 0 and np.isfinite(price):
        return round_level(price, buy == is_limit, s.tick_size)
    return price


@kernel
def child_state(orders, parent) -> int:
    """Where a bracket child of `parent` stands when placed, by the order that carries the
    parent's entry (`entry_of`: the parent, or the order a later delta order merged it
    into): `WAITING` for its first fill, `LIVE` (it filled, in part or in full: the child
    is checked from the next bar), or `ENDED` without a fill (replaced by a target,
    rejected, noop, cancelled, expired: the child is cancelled)."""
    carrier = orders[entry_of(orders, parent)]
    if carrier["filled_quantity"] != 0 or carrier["status"] == OrderStatus.filled:
        return LIVE
    if carrier["status"] == OrderStatus.open:
        return WAITING
    return ENDED


@kernel
def planned_positions(positions, orders, resting, n_resting):
    """Positions as planned at a decision, before its orders: held, plus the open resting
    entries (the user's resting orders that are not bracket children)."""
    planned = positions.copy()
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        if (record["status"] == OrderStatus.open and record["origin"] == Origin.user
                and record["parent"] < 0):
            planned[record["asset"]] += record["amount"]
    return planned


@kernel
def planned_after(kind: int, amount: float, planned: float, close: float,
                  equity: float) -> float:
    """The position an order leads to from `planned` shares, estimated at the decision
    close (a target sets it; other orders add to it)."""
    if kind == OrderKind.shares:
        return planned + amount
    if kind == OrderKind.value:
        return planned + amount / close
    if kind == OrderKind.percent:
        return planned + amount * equity / close
    if kind == OrderKind.target_shares:
        return amount
    if kind == OrderKind.target_value:
        return amount / close
    return amount * equity / close


@kernel
def planned_verdict(s, planned, last_close, j, new_q, price, equity, peak) -> int:
    """`entry_verdict` of an order taking asset `j` from `planned[j]` to `new_q` shares,
    the other assets as planned (valued at `last_close`, `j` at `price`)."""
    held = 0
    gross = 0.0
    for i in range(len(planned)):
        if planned[i] != 0:
            held += 1
            if i != j and np.isfinite(last_close[i]):
                gross += abs(planned[i] * last_close[i])
    if np.isfinite(price):
        gross += abs(new_q) * price
    return entry_verdict(s, held, gross, planned[j], new_q, price, equity, peak)


@kernel
def entry_verdict(s, held: int, gross: float, q: float, new_q: float, price: float,
                  equity: float, peak: float) -> int:
    """Reason code of the portfolio rule an order breaks when placed (0: none).

    Only entries (orders that increase |position| or reverse it) are checked: `halt_drawdown` (the
    drawdown from the equity peak has reached it), `max_positions` (`held` positions
    open already and this one opens another), `max_weight` (|new position| × price over
    equity), `max_gross` (`gross` exposure after the order over equity).
    """
    if (abs(new_q) <= abs(q) and q * new_q >= 0) or not np.isfinite(price):
        return Reason.none
    if s.halt_drawdown > 0 and peak > 0 and equity <= peak * (1.0 - s.halt_drawdown):
        return Reason.halt_drawdown
    if s.max_positions > 0 and q == 0 and held >= s.max_positions:
        return Reason.max_positions
    slack = 1.0 + 1e-9
    if s.max_weight > 0 and abs(new_q) * price > s.max_weight * equity * slack:
        return Reason.max_weight
    if s.max_gross > 0 and gross > s.max_gross * equity * slack:
        return Reason.max_gross
    return Reason.none


@kernel
def place_order(s, at: Decision, order: OrderSpec, book) -> int:
    """Place `order` at the close of decision `at.bar`; its id.

    A user's order that is not a bracket child is checked against the portfolio rules
    first (recorded `rejected` with the rule's reason when it breaks one; an accepted one
    moves `at.plan`). A user's market order goes into its asset's slot, due at the next
    fill point; the waiting children of an entry it replaces are cancelled. A user's
    limit and stop are rounded to the profile's tick. A bracket child waits for its
    entry's first fill, is live from the next bar when the entry has filled, or is
    cancelled (reason `cancelled`) when the entry ended unfilled (`child_state`).
    The caller reserves room for one record.
    """
    j = order.asset
    user = order.origin == Origin.user
    if user and s.portfolio_rules and order.parent < 0:
        close = at.last_close[j]
        new_q = planned_after(order.kind, order.amount, at.plan[j], close, at.equity)
        verdict = planned_verdict(s, at.plan, at.last_close, j, new_q, close, at.equity,
                                  at.peak)
        if verdict != Reason.none:
            return reject_nb(book.orders, book.n_orders, at.bar, j, order.kind, order.amount,
                             order.type, verdict)
        if np.isfinite(new_q) and np.isfinite(close) and at.equity > 0:
            at.plan[j] = new_q
    if user and order.type == OrderType.market:
        previous = book.slots[j]["order_id"]
        oid = submit_one_nb(book.slots, book.orders, book.n_orders, at.bar,
                            due_bar(s, at.bar), j, order.kind, order.amount)
        if (previous >= 0 and book.orders[previous]["has_children"]
                and book.orders[previous]["status"] == OrderStatus.replaced):
            release_children_nb(book.orders, book.resting, book.n_resting, previous, at.bar,
                                False, np.nan)
        return oid
    limit, stop = order.limit, order.stop
    if user:
        limit = placed_level(s, limit, order.amount > 0, True)
        stop = placed_level(s, stop, order.amount > 0, False)
    state = LIVE
    active_from = order.active_from
    if order.parent >= 0:
        state = child_state(book.orders, order.parent)
        active_from = NEVER if state == WAITING else at.bar + 1
    oid = place_nb(book.orders, book.n_orders, book.resting, book.n_resting, at.bar, j,
                   order.type, order.amount, limit, stop, order.trail, order.trail_mode,
                   order.reference, order.valid_until, active_from, order.parent, order.group,
                   order.origin)
    if state == ENDED:
        close_resting_nb(book.orders, oid, at.bar, OrderStatus.cancelled, Reason.cancelled,
                         0.0)
    return oid


@kernel
def user_order(asset, kind, order_type, amount, limit, stop, trail, trail_mode, reference,
               valid_until, bar, parent, group) -> OrderSpec:
    """A strategy's or an order table's order placed at `bar`'s close (see `OrderSpec`)."""
    return OrderSpec(asset, kind, order_type, amount, limit, stop, trail, trail_mode,
                     reference, valid_until, bar + 1, parent, group, Origin.user)


@kernel
def market_order(asset, kind, amount) -> OrderSpec:
    """A user's market order of `kind` (see `OrderSpec`)."""
    return OrderSpec(asset, kind, OrderType.market, amount, np.nan, np.nan, np.nan, 0,
                     np.nan, NEVER, NEVER, -1, -1, Origin.user)


@kernel
def place_market(s, at: Decision, assets, kind, amounts, count, book, ids) -> None:
    """A strategy's market orders of `kind`, one per asset, in order (`place_order`);
    `ids[:count]` gets their ids."""
    for i in range(count):
        ids[i] = place_order(s, at, market_order(assets[i], kind, amounts[i]), book)


@kernel
def place_rules(s, bar, asset, q, base, book) -> None:
    """The exits of a position of `q` shares entered at `bar` at `base`: one OCO group."""
    long = q > 0
    at = Decision(bar, np.nan, np.nan, np.empty(0), np.empty(0))
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


# order-table rows: columns of the int and float row arrays (`place_rows`)
ROW_ASSET, ROW_TYPE, ROW_TRAIL_MODE, ROW_VALID_UNTIL, ROW_LABEL, ROW_PARENT = range(6)
ROW_QUANTITY, ROW_LIMIT, ROW_STOP, ROW_TRAIL = range(4)
STATE_ORDER, STATE_FAMILY, STATE_LABEL = range(3)


@kernel
def place_rows(s, bar, first, last, rows_i, rows_f, row_state, equity, peak, positions,
               last_close, book) -> None:
    """Place order-table rows `first` … `last − 1` at the close of `bar`, in row order,
    each through `place_order` as `Context.order` places one call per row.

    `rows_i` columns: asset, OrderType, TrailMode, last bar (NEVER: none), OCO label code
    (−1: none), parent row (−1: none); `rows_f`: quantity, limit, stop, trail (NaN where
    none). `row_state` rows (over table rows): the order id each row placed, the group of
    a parent row's children, the group an OCO label names (its first order's id).
    """
    plan = np.empty(0)
    if s.portfolio_rules:
        plan = planned_positions(positions, book.orders, book.resting, book.n_resting)
    at = Decision(bar, equity, peak, plan, last_close)
    for k in range(first, last):
        j = rows_i[k, ROW_ASSET]
        kind = rows_i[k, ROW_TYPE]
        parent_row = rows_i[k, ROW_PARENT]
        label = rows_i[k, ROW_LABEL]
        parent = -1
        group = -1
        if parent_row >= 0:
            parent = row_state[STATE_ORDER, parent_row]
            group = row_state[STATE_FAMILY, parent_row]
            if group < 0:
                group = -2
        elif label >= 0 and kind != OrderType.market:
            group = row_state[STATE_LABEL, label]
            if group < 0 or not group_is_open(book.orders, book.resting, book.n_resting,
                                              group):
                group = -2
        oid = place_order(s, at, user_order(j, OrderKind.shares, kind, rows_f[k, ROW_QUANTITY],
                                            rows_f[k, ROW_LIMIT], rows_f[k, ROW_STOP],
                                            rows_f[k, ROW_TRAIL], rows_i[k, ROW_TRAIL_MODE],
                                            last_close[j], rows_i[k, ROW_VALID_UNTIL], bar,
                                            parent, group), book)
        row_state[STATE_ORDER, k] = oid
        if book.orders[oid]["status"] == OrderStatus.rejected or kind == OrderType.market:
            continue
        if parent_row >= 0:
            if row_state[STATE_FAMILY, parent_row] < 0:
                row_state[STATE_FAMILY, parent_row] = oid
        elif label >= 0 and group == -2:
            row_state[STATE_LABEL, label] = oid


@kernel
def group_is_open(orders, resting, n_resting, group) -> bool:
    """Whether an order of OCO `group` is still open."""
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        if record["group"] == group and record["status"] == OrderStatus.open:
            return True
    return False
