"""Placing orders: the one routine every order of the engine goes through.

`place_order` places one order at the close of a decision bar, whoever asks: a callback
strategy (`Context`), an order table's rows (`place_rows`), target weights
(`loop.rebalance`), a bracket's entry and children, or the risk rules' exits of a position
(`position_rules.place_rules`). It checks a user's entry against the portfolio rules
(`refusal`: `portfolio_rules.entry_verdict` against the positions planned at the
decision), puts a market order into its asset's slot (`place_market_order`, cancelling the
waiting children of an entry a target replaces), rounds a user's levels to the profile's
tick and attaches a bracket child to the order that carries its parent's entry
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
    submit_nb,
    submit_one_nb,
)
from engine.core.kernels import NEVER, kernel
from engine.core.kernels.portfolio_rules import (
    planned_after,
    planned_verdict,
)
from engine.core.records import (
    Decision,
    FillTiming,
    OrderKind,
    OrderSpec,
    OrderStatus,
    OrderType,
    Origin,
    Reason,
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


@kernel(inline=True)
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
    if user and order.type == OrderType.market:
        return place_market_order(s, at, j, order.kind, order.amount, book)
    if user and s.portfolio_rules and order.parent < 0:
        refused = refusal(s, at, j, order.kind, order.amount, order.type, book)
        if refused >= 0:
            return refused
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


@kernel(inline=True)
def refusal(s, at: Decision, j, kind, amount, order_type, book) -> int:
    """The id of the `rejected` record of an entry that breaks a portfolio rule at
    decision `at`, else −1 (the accepted entry moves the plan, `at.plan`)."""
    close = at.last_close[j]
    new_q = planned_after(kind, amount, at.plan[j], close, at.equity)
    verdict = planned_verdict(s, at.plan, at.last_close, j, new_q, close, at.equity, at.peak)
    if verdict != Reason.none:
        return reject_nb(book.orders, book.n_orders, at.bar, j, kind, amount, order_type,
                         verdict)
    if np.isfinite(new_q) and np.isfinite(close) and at.equity > 0:
        at.plan[j] = new_q
    return -1


@kernel(inline=True)
def place_market_order(s, at: Decision, j, kind, amount, book) -> int:
    """A user's market order of `kind` on asset `j` (`place_order`): checked against the
    portfolio rules, then into the asset's slot, due at the next fill point; the waiting
    children of an entry it replaces are cancelled. Inlined into the loops that place
    one per asset (`place_market`)."""
    if s.portfolio_rules:
        refused = refusal(s, at, j, kind, amount, OrderType.market, book)
        if refused >= 0:
            return refused
    previous = book.slots[j]["order_id"]
    oid = submit_one_nb(book.slots, book.orders, book.n_orders, at.bar, due_bar(s, at.bar), j,
                        kind, amount)
    if (previous >= 0 and book.n_resting[0] > 0 and book.orders[previous]["has_children"]
            and book.orders[previous]["status"] == OrderStatus.replaced):
        release_children_nb(book.orders, book.resting, book.n_resting, previous, at.bar,
                            False, np.nan)
    return oid


@kernel
def user_order(asset, kind, order_type, amount, limit, stop, trail, trail_mode, reference,
               valid_until, bar, parent, group) -> OrderSpec:
    """A strategy's or an order table's order placed at `bar`'s close (see `OrderSpec`)."""
    return OrderSpec(asset, kind, order_type, amount, limit, stop, trail, trail_mode,
                     reference, valid_until, bar + 1, parent, group, Origin.user)


@kernel
def place_market(s, at: Decision, assets, kind, amounts, count, book, ids) -> None:
    """A user's market orders of `kind`, one per asset, in order, each as
    `place_market_order` places it; `ids[:count]` gets their ids. Without portfolio rules
    the batch goes into the slots in one pass (`submit_nb`), then the waiting children of
    the entries it replaced are cancelled."""
    if s.portfolio_rules:
        for i in range(count):
            ids[i] = place_market_order(s, at, assets[i], kind, amounts[i], book)
        return
    for i in range(count):
        ids[i] = book.slots[assets[i]]["order_id"]  # the order each replaces or absorbs
    first = submit_nb(book.slots, book.orders, book.n_orders, at.bar, due_bar(s, at.bar),
                      assets, kind, amounts, count)
    for i in range(count):
        previous = ids[i]
        if (previous >= 0 and book.n_resting[0] > 0 and book.orders[previous]["has_children"]
                and book.orders[previous]["status"] == OrderStatus.replaced):
            release_children_nb(book.orders, book.resting, book.n_resting, previous, at.bar,
                                False, np.nan)
        ids[i] = first + i


# order-table rows: columns of the int and float row arrays (`place_rows`)
ROW_ASSET, ROW_TYPE, ROW_TRAIL_MODE, ROW_VALID_UNTIL, ROW_LABEL, ROW_PARENT = range(6)
ROW_QUANTITY, ROW_LIMIT, ROW_STOP, ROW_TRAIL = range(4)
STATE_ORDER, STATE_FAMILY, STATE_LABEL = range(3)


@kernel
def place_rows(s, at, first, last, rows_i, rows_f, row_state, book) -> None:
    """Place order-table rows `first` … `last − 1` at decision `at`, in row order, each
    through `place_order` as `Context.order` places one call per row.

    `rows_i` columns (int32): asset, OrderType, TrailMode, last bar (−1: none, NEVER), OCO
    label code (−1: none), parent row (−1: none); `rows_f`: quantity, limit, stop, trail
    (NaN where none). `row_state` rows (over table rows; no columns when the table has
    neither parents nor labels): the order id each row placed, the group of a parent
    row's children, the group an OCO label names (its first order's id).
    """
    bar, last_close = at.bar, at.last_close
    tracked = row_state.shape[1] > 0
    for k in range(first, last):
        j = np.int64(rows_i[k, ROW_ASSET])
        kind = np.int64(rows_i[k, ROW_TYPE])
        parent_row = rows_i[k, ROW_PARENT]
        label = rows_i[k, ROW_LABEL]
        valid_until = np.int64(rows_i[k, ROW_VALID_UNTIL])
        if valid_until < 0:
            valid_until = NEVER
        parent = np.int64(-1)
        group = np.int64(-1)
        if parent_row >= 0:
            parent = np.int64(row_state[STATE_ORDER, parent_row])
            group = np.int64(row_state[STATE_FAMILY, parent_row])
            if group < 0:
                group = -2
        elif label >= 0 and kind != OrderType.market:
            group = np.int64(row_state[STATE_LABEL, label])
            if group < 0 or not group_is_open(book.orders, book.resting, book.n_resting,
                                              group):
                group = -2
        oid = place_order(s, at, user_order(j, OrderKind.shares, kind, rows_f[k, ROW_QUANTITY],
                                            rows_f[k, ROW_LIMIT], rows_f[k, ROW_STOP],
                                            rows_f[k, ROW_TRAIL],
                                            np.int64(rows_i[k, ROW_TRAIL_MODE]),
                                            last_close[j], valid_until, bar, parent, group),
                          book)
        if not tracked:
            continue
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
