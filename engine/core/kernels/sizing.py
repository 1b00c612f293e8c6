"""Sizing: open orders to share deltas, at the fill or at the decision (docs/semantics.md).

`requested_delta` sizes an open order at a batch's valuation: the share delta and the
approximate cash value that sequences the batch. `decision_shares` sizes a target value at
the decision close, the way the profiles that size at decision do (backtrader, zipline).
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import kernel
from engine.core.records import NO_TARGET, DecisionSizing, OrderKind


@kernel
def requested_delta(slot, position: float, book_value: float, price: float):
    """(delta, value) of one open order at `price` with the book worth `book_value`.

    A target's delta is `target_value / price − position` and its value
    `target_value − position × price`, with `target_value` = `a × book_value`
    (target_percent), `a` (target_value) or `a × price` (target_shares); delta parts add
    their own amounts. Computed in this order so that results are bit-equal to vectorbt's.
    """
    kind = slot["target_kind"]
    amount = slot["target_amount"]
    delta = 0.0
    value = 0.0
    if kind == OrderKind.target_percent:
        target_value = amount * book_value
        delta = target_value / price - position
        value = target_value - position * price
    elif kind == OrderKind.target_value:
        delta = amount / price - position
        value = amount - position * price
    elif kind == OrderKind.target_shares:
        delta = amount - position
        value = amount * price - position * price
    elif kind != NO_TARGET:
        raise ValueError("unknown target kind")
    shares, cash, percent = slot["add_shares"], slot["add_value"], slot["add_percent"]
    if shares != 0 or cash != 0 or percent != 0:
        delta = delta + shares + cash / price + (percent * book_value) / price
        value = value + shares * price + cash + percent * book_value
    return delta, value


@kernel
def whole_shares(amount: float) -> float:
    """Truncate toward zero, unless within 1e-4 of a whole share (then round): zipline's."""
    nearest = np.rint(amount)
    return nearest if abs(amount - nearest) <= 1e-4 else np.trunc(amount)


@kernel
def decision_shares(rule: int, target_value: float, held: float, close: float) -> float:
    """Shares to trade now for `target_value` at the decision `close` (NaN: no close yet).

    `DecisionSizing.backtrader`: the value delta floored to whole shares,
    `int(|Δvalue| // close)` with its sign; a target of 0 closes the whole position.
    `DecisionSizing.zipline`: `target / close − held`, truncated toward zero unless within
    1e-4 of a whole share.
    """
    if rule == DecisionSizing.zipline:
        return whole_shares(target_value / close - held)
    if target_value == 0 and held != 0:
        return -held
    delta_value = target_value - held * close
    return np.copysign(abs(delta_value) // close, delta_value)


@kernel
def decision_orders(rule, kind, amounts, equity, held, close, out) -> None:
    """Shares to trade now for target orders sized at the decision close (`rule`), 0 where
    there is nothing to trade or no close yet. A target in shares is the delta rounded
    like zipline's; values and percents follow `decision_shares`."""
    for i in range(len(amounts)):
        if kind == OrderKind.target_shares:
            shares = whole_shares(amounts[i] - held[i])
        elif kind == OrderKind.target_value:
            shares = decision_shares(rule, amounts[i], held[i], close[i])
        else:
            shares = decision_shares(rule, amounts[i] * equity, held[i], close[i])
        out[i] = shares if np.isfinite(shares) else 0.0


@kernel
def pending_shares(slots, positions, book_value, prices, out) -> None:
    """Shares each asset's open order would trade at `prices` (0 where none)."""
    for j in range(len(slots)):
        out[j] = 0.0
        if slots[j]["order_id"] >= 0:
            out[j] = requested_delta(slots[j], positions[j], book_value, prices[j])[0]
