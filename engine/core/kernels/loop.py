"""The compiled loop: the phases of every timestamp, from one bar to the next decision.

Per bar t: (profile) screen the last decision's orders; 1–2 fill the orders due at t and
book them into the ledger; 3 mark; 4 decide; 5 queue; with `same_close`, fill and book
again at the close; record cash and the positions' value. `advance` runs bars from `start`
until it needs Python: a decision of a callback strategy (it returns there, before phase
4, with the equity the strategy sees), or room in the journal or the order records. A
target-weight table given as rows per bar is decided here (`rebalance`), so such a run
never stops for decisions.
"""

from __future__ import annotations

import numpy as np

from engine.core.book import close_nb, fill_part_nb, is_due, submit_nb
from engine.core.kernels import argsort_stable, kernel
from engine.core.kernels.execution import execute_batch
from engine.core.kernels.hooks import (
    drop_without_bar,
    screen,
    sequence,
    still_open,
    volume_cap,
)
from engine.core.kernels.sizing import decision_shares, requested_delta
from engine.core.ledger import apply_fills_nb, book_value, positions_value
from engine.core.records import DecisionSizing, FillTiming, OrderKind, OrderStatus

DONE, DECIDE, ROOM = 0, 1, 2  # why `advance` returned
FROM_START, AFTER_DECISION = 0, 1  # where `advance` resumes its first bar
N_INT_WORK, N_FLOAT_WORK = 8, 12  # rows of the work arrays


@kernel
def due_bar(s, bar: int) -> int:
    """First bar at which an order placed at `bar`'s close may fill."""
    return bar if s.fill == FillTiming.same_close else bar + 1


@kernel
def fill_batch(s, bar, price, known, has_bar, volume, cash, positions, journal, n_fills,
               slots, orders, wi, wf) -> bool:
    """Phases 1–2 at one fill point: size, sequence and execute the orders due now, book
    the fills into the ledger and the outcomes into the book. False if nothing was due.

    `price` is the fill price row, `known` the price that values a held asset without a
    bar; `wi`/`wf` are work arrays (`N_INT_WORK`/`N_FLOAT_WORK` rows over the assets).
    """
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
        cap[i] = volume_cap(s, volume[bar, j] if s.volume_limit > 0 else 0.0)
    order, buffer = wi[6], wi[7]
    sequence(s, count, value, ids, order, buffer)
    extra = (s.leverage - 1.0) * worth if s.leverage > 1.0 else 0.0
    execute_batch(count, order, delta, held, px, cap, cash[0], extra, s, size, adj, fee,
                  status, reason)
    filled = 0
    for i in range(count):
        if status[i] == OrderStatus.filled:
            fill_asset[filled] = due[order[i]]
            fill_order[filled] = ids[order[i]]
            fill_quantity[filled] = size[i]
            fill_price[filled] = adj[i]
            fill_fee[filled] = fee[i]
            filled += 1
    apply_fills_nb(cash, positions, journal, n_fills, bar, fill_asset, fill_quantity,
                   fill_price, fill_fee, fill_order, filled)
    for i in range(count):
        k = order[i]
        if still_open(s, delta[k], size[i], cap[k], status[i]):
            fill_part_nb(slots, orders, bar, due[k], size[i])
        else:
            close_nb(slots, orders, bar, due[k], status[i], reason[i], size[i])
    return True


@kernel
def rebalance(s, bar, target, equity, positions, last_close, slots, orders, n_orders, wi,
              wf) -> int:
    """Phases 4–5 for target weights over every asset: orders for what is targeted, held
    or pending, submitted sells first by the delta estimated at this close. Returns the
    number of orders placed (the caller reserves room for one per asset)."""
    chosen, assets = wi[0], wi[1]
    estimate, amounts = wf[0], wf[1]
    count = 0
    for j in range(len(target)):
        if target[j] != 0 or positions[j] != 0 or slots[j]["order_id"] >= 0:
            chosen[count] = j
            estimate[count] = target[j] * equity - positions[j] * last_close[j]
            count += 1
    by_estimate = wi[6]
    argsort_stable(estimate, count, by_estimate, wi[7])
    due = due_bar(s, bar)
    if s.decision_sizing == DecisionSizing.at_fill:
        for i in range(count):
            assets[i] = chosen[by_estimate[i]]
            amounts[i] = target[assets[i]]
        submit_nb(slots, orders, n_orders, bar, due, assets, OrderKind.target_percent, amounts,
                  count)
        return count
    placed = 0
    for i in range(count):
        j = chosen[by_estimate[i]]
        shares = decision_shares(s.decision_sizing, target[j] * equity, positions[j],
                                 last_close[j])
        if np.isfinite(shares) and shares != 0:
            assets[placed] = j
            amounts[placed] = shares
            placed += 1
    submit_nb(slots, orders, n_orders, bar, due, assets, OrderKind.shares, amounts, placed)
    return placed


@kernel
def advance(s, start, resume, open_, close, last_close, known_open, has_bar, volume, decide,
            weight_start, weight_asset, weight, cash, positions, journal, n_fills, slots,
            orders, n_orders, cash_curve, value_curve):
    """Run bars from `start` (its first phase or, with `resume=AFTER_DECISION`, right after
    its decision) until the end, a callback decision or a full journal or order record.

    Returns (bar, why, equity): `DONE`; `DECIDE` at `bar` with the equity marked there;
    `ROOM` at the start of `bar` (reserve room for 2 batches of fills, and for one order per
    asset when the weights are decided here, then call again). The weights are decided here
    when `weight_start` has a row per bar: the weights of bar t are
    `weight[weight_start[t]:weight_start[t + 1]]` on `weight_asset`.
    """
    n_bars, n_assets = close.shape
    in_kernel = len(weight_start) == n_bars + 1
    wi = np.empty((N_INT_WORK, n_assets), dtype=np.int64)
    wf = np.empty((N_FLOAT_WORK, n_assets))
    target = np.zeros(n_assets)
    nothing_known = np.full(n_assets, np.nan)
    for t in range(start, n_bars):
        if not (resume == AFTER_DECISION and t == start):
            if n_fills[0] + 2 * n_assets > len(journal) or (
                    in_kernel and n_orders[0] + n_assets > len(orders)):
                return t, ROOM, np.nan
            if t > 0:
                screen(s, t, slots, orders, cash[0], last_close[t - 1])
            if s.fill == FillTiming.next_open:
                known = known_open[t - 1] if t > 0 else nothing_known
                fill_batch(s, t, open_[t], known, has_bar[t], volume, cash, positions, journal,
                           n_fills, slots, orders, wi, wf)
            elif s.fill == FillTiming.next_close:
                fill_batch(s, t, close[t], last_close[t], has_bar[t], volume, cash, positions,
                           journal, n_fills, slots, orders, wi, wf)
            cash_curve[t] = cash[0]
            if decide[t]:
                value_curve[t] = positions_value(positions, last_close[t])
                equity = cash[0] + value_curve[t]
                if not in_kernel:
                    return t, DECIDE, equity
                for k in range(weight_start[t], weight_start[t + 1]):
                    target[weight_asset[k]] = weight[k]
                rebalance(s, t, target, equity, positions, last_close[t], slots, orders,
                          n_orders, wi, wf)
                for k in range(weight_start[t], weight_start[t + 1]):
                    target[weight_asset[k]] = 0.0
        if s.fill == FillTiming.same_close and fill_batch(
                s, t, close[t], last_close[t], has_bar[t], volume, cash, positions, journal,
                n_fills, slots, orders, wi, wf):
            cash_curve[t] = cash[0]
            value_curve[t] = positions_value(positions, last_close[t])
        elif not decide[t]:
            value_curve[t] = positions_value(positions, last_close[t])
    return n_bars, DONE, np.nan
