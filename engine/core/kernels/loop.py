"""The compiled loop: the phases of every timestamp, from one bar to the next decision.

Per bar t: (profile) screen the last decision's orders; 1–2 fill the orders due at t and
book them into the ledger (market orders at the open, then the resting orders along the
bar's path, `fill_pass.py`; with close fills the resting orders first, or under the `close`
path each asset's orders at the close in placement order), give new positions
their risk-rule exits; 3 mark; 4 decide; 5 queue; with `same_close`, fill and book again at
the close; record cash and the positions' value. `advance` runs bars from `start`
until it needs Python: a decision of a callback strategy (it returns there, before phase
4, with the equity the strategy sees), or room in the journal or the order records. A
target-weight table given as rows per bar is decided here (`rebalance`), so such a run
never stops for decisions.
"""

from __future__ import annotations

import numpy as np

from engine.core.book import (
    cancel_assets_nb,
    close_nb,
    fill_part_nb,
    is_due,
    release_children_nb,
)
from engine.core.kernels import NEVER, argsort_stable, kernel
from engine.core.kernels.execution import execute_batch
from engine.core.kernels.fill_pass import AFTER_MARKET, ALL, BEFORE_MARKET, resting_pass
from engine.core.kernels.hooks import (
    drop_without_bar,
    screen,
    sequence,
    still_open,
    volume_cap,
)
from engine.core.kernels.placement import place_market, place_rows
from engine.core.kernels.portfolio_rules import planned_positions
from engine.core.kernels.position_rules import position_rules
from engine.core.kernels.sizing import decision_shares, requested_delta
from engine.core.ledger import apply_fills_nb, book_value, positions_value
from engine.core.records import (
    Decision,
    DecisionSizing,
    FillTiming,
    IntrabarPath,
    OrderKind,
    OrderStatus,
    Reason,
)

DONE, DECIDE, ROOM = 0, 1, 2  # why `advance` returned
FROM_START, AFTER_DECISION = 0, 1  # where `advance` resumes its first bar
N_INT_WORK, N_FLOAT_WORK = 9, 12  # rows of the work arrays
RULE_ORDERS = 4  # most exit orders the risk rules give one position
ROW_STEP = 1 << 20  # order-table rows placed per call (then the caller frees them)


@kernel
def room_needed(s, n_assets: int, n_resting: int, decided_here: bool):
    """(fills, orders) one bar may add: two market batches and every resting order fill;
    a rebalance's orders, and the rule exits of every fill."""
    fills = 2 * n_assets + n_resting
    rules = RULE_ORDERS * fills if s.position_rules else 0
    return fills, rules + (n_assets if decided_here else 0)


@kernel
def fill_batch(s, bar, price, bar_close, known, has_bar, budget, stopped, ledger, book, wi,
               wf) -> bool:
    """Phases 1–2 at one fill point: size, sequence and execute the orders due now, book
    the fills into the ledger and the outcomes into the book. False if nothing was due.

    `price` is the fill price row, `known` the price that values a held asset without a
    bar; `budget` each asset's shares left under the volume cap this bar (used up here; an
    order that finds it spent marks the asset `stopped`); `wi`/`wf` are work arrays
    (`N_INT_WORK`/`N_FLOAT_WORK` rows over the assets).
    """
    cash, positions, journal, n_fills = ledger
    slots, orders, resting, n_resting = book.slots, book.orders, book.resting, book.n_resting
    drop_without_bar(s, bar, slots, orders, has_bar)
    due, ids, status, reason, fill_asset, fill_order = wi[0], wi[1], wi[2], wi[3], wi[4], wi[5]
    delta, value, held, px, cap = wf[0], wf[1], wf[2], wf[3], wf[4]
    size, adj, fee, valuation = wf[5], wf[6], wf[7], wf[8]
    fill_quantity, fill_price, fill_fee = wf[9], wf[10], wf[11]
    count = 0
    for j in range(len(slots)):
        if has_bar[j] and is_due(slots[j], bar):
            due[count] = j
            count += 1
    if count == 0:
        return False
    for j in range(len(slots)):
        valuation[j] = price[j] if has_bar[j] else known[j]
    worth = book_value(cash[0], positions, valuation)
    for i in range(count):
        j = due[i]
        delta[i], value[i] = requested_delta(slots[j], positions[j], worth, price[j])
        ids[i] = slots[j]["order_id"]
        held[i] = positions[j]
        px[i] = price[j]
        if s.volume_limit > 0:
            cap[i] = 0.0 if stopped[j] else budget[j]
        else:
            cap[i] = np.inf
    order, buffer = wi[6], wi[7]
    sequence(s, count, value, ids, order, buffer)
    extra = (s.leverage - 1.0) * worth if s.leverage > 1.0 else 0.0
    execute_batch(count, order, delta, held, px, cap, cash[0], extra, s, s.slippage, size, adj,
                  fee, status, reason)
    filled = 0
    for i in range(count):
        if s.volume_limit > 0:
            j = due[order[i]]
            budget[j] -= abs(size[i])
            if cap[order[i]] <= 0:
                stopped[j] = True
        if status[i] == OrderStatus.filled:
            fill_asset[filled] = due[order[i]]
            fill_order[filled] = ids[order[i]]
            fill_quantity[filled] = size[i]
            fill_price[filled] = adj[i]
            fill_fee[filled] = fee[i]
            filled += 1
    apply_fills_nb(cash, positions, journal, n_fills, bar, fill_asset, fill_quantity,
                   fill_price, fill_fee, fill_order, filled)
    closing = wi[8]  # 0 over the assets: 1 or 2 where a fill closed the position
    closed = False
    for i in range(count):
        k = order[i]
        j = due[k]
        parent = ids[k] if orders[ids[k]]["has_children"] and n_resting[0] > 0 else -1
        base = bar_close[j] if s.stop_base_close else adj[i]
        if still_open(s, delta[k], size[i], cap[k], status[i]):
            fill_part_nb(slots, orders, bar, j, size[i])
            if parent >= 0 and status[i] == OrderStatus.filled:  # a first, partial fill
                release_children_nb(orders, resting, n_resting, parent, bar, True, base)
            continue
        target = slots[j]["target_kind"] >= OrderKind.target_shares
        close_nb(slots, orders, bar, j, status[i], reason[i], size[i])
        filled = status[i] == OrderStatus.filled
        if n_resting[0] > 0:
            if parent >= 0:
                release_children_nb(orders, resting, n_resting, parent, bar, filled, base)
            if filled and positions[j] == 0 and (target or s.position_rules):
                closing[j] = 2 if target else 1
                closed = True
    if closed:  # the closed positions' resting orders (all, or the rules'), in one pass
        cancel_assets_nb(orders, resting, n_resting, closing, Reason.position_closed)
        for i in range(count):
            closing[due[i]] = 0
    return True


@kernel
def rebalance(s, at, target, positions, book, wi, wf) -> int:
    """Phases 4–5 for target weights over every asset at decision `at`: orders for what is
    targeted, held or pending, placed sells first by the delta estimated at this close
    (`placement.place_market`, which checks each against the portfolio rules with the
    positions planned at this decision, `at.plan`, and records one that breaks a rule
    `rejected`).
    Returns the number of orders recorded (the caller reserves room for one per asset)."""
    equity, last_close = at.equity, at.last_close
    chosen = wi[0]
    estimate = wf[0]
    count = 0
    for j in range(len(target)):
        if target[j] != 0 or positions[j] != 0 or book.slots[j]["order_id"] >= 0:
            chosen[count] = j
            estimate[count] = target[j] * equity - positions[j] * last_close[j]
            count += 1
    by_estimate = wi[6]
    argsort_stable(estimate, count, by_estimate, wi[7])
    assets, amounts = wi[1], wf[1]
    kind = OrderKind.target_percent
    if s.decision_sizing != DecisionSizing.at_fill:
        kind = OrderKind.shares
    placed = 0
    for i in range(count):
        j = chosen[by_estimate[i]]
        amount = target[j]
        if s.decision_sizing != DecisionSizing.at_fill:
            amount = decision_shares(s.decision_sizing, target[j] * equity, positions[j],
                                     last_close[j])
            if not (np.isfinite(amount) and amount != 0):
                continue
        assets[placed] = j
        amounts[placed] = amount
        placed += 1
    place_market(s, at, assets, kind, amounts, placed, book, wi[2])
    return placed


@kernel
def advance(s, start, resume, bars, schedule, ledger, book, curves):
    """Run bars from `start` (its first phase or, with `resume=AFTER_DECISION`, right after
    its decision) until the end, a callback decision or a full journal or order record,
    over the market (`bars`), what is decided (`schedule`), the ledger's and the book's
    arrays and the per-bar `curves` (records.py).

    Returns (bar, why, equity): `DONE`; `DECIDE` at `bar` with the equity marked there;
    `ROOM` at the start of `bar` (reserve the room `room_needed` says, then call again;
    also after every `ROW_STEP` order-table rows, whose memory the caller may free).
    `bars.high` and `bars.low` may be empty (0 rows) when no order can rest (no resting
    order can be placed and no risk rule is on). A weight table or an order table in
    `schedule` is decided here (`rebalance`, `placement.place_rows`).
    """
    open_, close, last_close = bars.open, bars.close, bars.last_close
    known_open, has_bar, volume = bars.known_open, bars.has_bar, bars.volume
    decide, weight_start, weight_asset, weight, row_start, rows_i, rows_f, row_state = schedule
    cash, positions, journal, n_fills = ledger
    slots, orders, n_orders, resting, n_resting = book
    cash_curve, value_curve = curves
    n_bars, n_assets = close.shape
    by_rows = len(row_start) == n_bars + 1
    in_kernel = len(weight_start) == n_bars + 1 or by_rows
    wi = np.empty((N_INT_WORK, n_assets), dtype=np.int64)
    wi[8] = 0  # `fill_batch`'s assets closing
    wf = np.empty((N_FLOAT_WORK, n_assets))
    target = np.zeros(n_assets)
    nothing_known = np.full(n_assets, np.nan)
    last_fill = np.full(n_assets, -1, dtype=np.int64)
    held = np.empty(n_assets)  # positions before a bar's fills (the risk rules' replay)
    budget = np.full(n_assets, np.inf)  # shares left under the volume cap this bar
    stopped = np.zeros(n_assets, dtype=np.bool_)  # an order found the budget spent
    split = np.full(n_assets, NEVER)  # id of the due market order at a `close` path close
    on_close = s.intrabar_path == IntrabarPath.close and s.fill == FillTiming.next_close
    peak = -np.inf
    for t in range(start):
        peak = max(peak, cash_curve[t] + value_curve[t])
    for t in range(start, n_bars):
        if s.volume_limit > 0:
            for j in range(n_assets):
                budget[j] = volume_cap(s, volume[t, j])
                stopped[j] = volume[t, j] == 0  # zipline skips a bar without volume
        if not (resume == AFTER_DECISION and t == start):
            fills_room, orders_room = room_needed(s, n_assets, n_resting[0], in_kernel)
            if by_rows:
                if t > start and row_start[t] - row_start[start] >= ROW_STEP:
                    return t, ROOM, np.nan  # the caller may free the rows placed so far
                orders_room += row_start[t + 1] - row_start[t]
            if (n_fills[0] + fills_room > len(journal)
                    or n_orders[0] + orders_room > len(orders)):
                return t, ROOM, np.nan
            first_fill = n_fills[0]
            if s.position_rules:
                held[:] = positions
            if t > 0:
                screen(s, t, slots, orders, cash[0], last_close[t - 1])
            known = known_open[t - 1] if t > 0 else nothing_known
            if s.fill == FillTiming.next_open:
                fill_batch(s, t, open_[t], close[t], known, has_bar[t], budget, stopped, ledger,
                           book, wi, wf)
            valuation = wf[8]  # read only with leverage (the buying power)
            if n_resting[0] > 0:
                if s.leverage > 1.0:
                    for j in range(n_assets):
                        valuation[j] = open_[t, j] if has_bar[t, j] else known[j]
                if on_close:
                    for j in range(n_assets):
                        due = has_bar[t, j] and is_due(slots[j], t)
                        split[j] = slots[j]["order_id"] if due else NEVER
                resting_pass(s, t, BEFORE_MARKET if on_close else ALL, split, budget, stopped,
                             bars, valuation, ledger, book)
            if s.fill == FillTiming.next_close:
                fill_batch(s, t, close[t], close[t], last_close[t], has_bar[t], budget, stopped,
                           ledger, book, wi, wf)
                if on_close and n_resting[0] > 0:
                    resting_pass(s, t, AFTER_MARKET, split, budget, stopped, bars, valuation,
                                 ledger, book)
            if n_fills[0] > first_fill:
                position_rules(s, t, first_fill, ledger, held, close[t], last_fill, book)
            cash_curve[t] = cash[0]
            if decide[t]:
                value_curve[t] = positions_value(positions, last_close[t])
                equity = cash[0] + value_curve[t]
                peak = max(peak, equity)
                if not in_kernel:
                    return t, DECIDE, equity
                planned = positions
                if s.portfolio_rules:
                    planned = planned_positions(positions, orders, resting, n_resting)
                at = Decision(t, equity, peak, planned, last_close[t])
                if by_rows:
                    place_rows(s, at, row_start[t], row_start[t + 1], rows_i, rows_f,
                               row_state, book)
                else:
                    for k in range(weight_start[t], weight_start[t + 1]):
                        target[weight_asset[k]] = weight[k]
                    rebalance(s, at, target, positions, book, wi, wf)
                    for k in range(weight_start[t], weight_start[t + 1]):
                        target[weight_asset[k]] = 0.0
        first_fill = n_fills[0]
        if s.position_rules:
            held[:] = positions
        if s.fill == FillTiming.same_close and fill_batch(
                s, t, close[t], close[t], last_close[t], has_bar[t], budget, stopped, ledger,
                book, wi, wf):
            if n_fills[0] > first_fill:
                position_rules(s, t, first_fill, ledger, held, close[t], last_fill, book)
            cash_curve[t] = cash[0]
            value_curve[t] = positions_value(positions, last_close[t])
        elif not decide[t]:
            value_curve[t] = positions_value(positions, last_close[t])
        peak = max(peak, cash_curve[t] + value_curve[t])
    return n_bars, DONE, np.nan
