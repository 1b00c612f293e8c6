"""The portfolio rules, checked when an order is placed: `max_positions`, `max_weight`,
`max_gross` and `halt_drawdown` against the positions planned at the decision
(docs/semantics.md, "Portfolio rules").
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import kernel
from engine.core.records import OrderKind, OrderStatus, Origin, Reason


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
