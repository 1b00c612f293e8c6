"""Execution of one batch of orders in sequence: costs, rounding, cash policy, leverage.

A batch is every order due at one fill point, already sized (`sizing.py`) and sequenced
(`hooks.sequence`). Orders execute one by one against the buying power left by the ones
before: `cash left + (L − 1) × V`, with V the book value the batch was sized at and L the
leverage allowed (1 without `allow_leverage`). Nothing here touches the ledger or the
book: results go to output arrays and the loop books them through their owners.
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import ABS_TOL, cancels, close_enough, kernel
from engine.core.records import CashPolicy, OrderStatus, Reason


@kernel
def fee_of(size: float, adj_price: float, notional: float, s) -> float:
    """Fee of a fill of `size` shares at the slipped price:
    notional × fees + max(size × per_share, min_fee) + fixed_fee."""
    fee = notional * s.fees
    if s.per_share > 0 or s.min_fee > 0:
        fee = fee + max(size * s.per_share, s.min_fee)
    return fee + s.fixed_fee


@kernel
def shrink(power: float, adj: float, s):
    """Largest buy that `power` pays for: (size, fee, power left); size 0 if nothing fits."""
    max_spend = 0.0
    if s.per_share > 0 or s.min_fee > 0:
        unit = adj * (1.0 + s.fees)
        size = (power - s.fixed_fee) / (unit + s.per_share)
        if size * s.per_share < s.min_fee:
            size = (power - s.fixed_fee - s.min_fee) / unit
        exact = False
    else:
        max_spend = (power - s.fixed_fee) / (1.0 + s.fees)
        if max_spend <= 0:
            return 0.0, 0.0, power
        size = max_spend / adj
        exact = True
    if s.integer:
        size = size // 1.0
        exact = False
    if not size > ABS_TOL:
        return 0.0, 0.0, power
    if exact:
        return size, power - max_spend, 0.0
    fee = fee_of(size, adj, size * adj, s)
    cost = size * adj + fee
    left = power - cost
    if close_enough(left, 0.0) or close_enough(cost, power):
        left = 0.0
    return size, fee, left


@kernel
def buy(power, size, adj, fee, s, reject_reason):
    """Execute a buy of `size` shares at `adj` with `fee` against `power` (it fits, shrinks
    or is rejected): (power after, size, fee, status, reason). Scalars in and out: no
    arrays cross the call."""
    if abs(power) <= ABS_TOL:
        power = 0.0
    need = size * adj + fee
    if power > 0 and (need <= power or close_enough(need, power)):
        left = 0.0 if close_enough(power, need) else power - need
        return left, size, fee, OrderStatus.filled, Reason.none
    if s.cash_policy == CashPolicy.reject or power <= 0:
        return power, size, fee, OrderStatus.rejected, reject_reason
    shrunk, shrunk_fee, left = shrink(power, adj, s)
    if shrunk == 0.0:
        return power, size, fee, OrderStatus.rejected, reject_reason
    return left, shrunk, shrunk_fee, OrderStatus.filled, Reason.shrunk_to_cash


@kernel
def with_slippage(price: float, slippage: float, buy: bool) -> float:
    """`price` moved against the trader by `slippage` (a fraction): the one slippage rule."""
    return price * (1.0 + slippage) if buy else price * (1.0 - slippage)


@kernel
def execute_batch(count, sequence, delta, position, price, cap, cash, extra_power, s,
                  slippage, size, adj, fee, status, reason):
    """Execute the first `count` orders of a batch in `sequence` (positions in the batch).

    `delta`, `position`, `price` and `cap` (most shares each order may fill now, inf for
    no cap) are indexed by batch position; `size`, `adj` (fill price), `fee`, `status` and
    `reason` are written in execution order, `size` signed and 0 unless filled.
    `extra_power` is (L − 1) × V. Sells never need cash; buys are checked one by one.
    `slippage` moves `price` against the trader (resting orders pass prices already
    slipped and capped at the bar, and 0 here).
    """
    has_buys = False
    for i in range(count):
        j = sequence[i]
        d = delta[j]
        sell = d < 0
        n = abs(d)
        if sell and not s.allow_short:
            n = min(n, position[j])
        if s.integer:
            n = np.floor(n)
        n = min(n, cap[j])
        p = price[j]
        if slippage:
            p = with_slippage(p, slippage, not sell)
        size[i] = n
        adj[i] = p
        fee[i] = fee_of(n, p, n * p, s)
        reason[i] = Reason.none
        if not n > ABS_TOL:
            status[i] = OrderStatus.noop
        elif sell and n * p - fee[i] < 0 and not cancels(n * p, -fee[i], n * p - fee[i]):
            status[i] = OrderStatus.rejected
            reason[i] = Reason.fee_exceeds_proceeds
        else:
            status[i] = OrderStatus.filled
            has_buys = has_buys or not sell

    if has_buys and s.cash_policy != CashPolicy.allow_negative:
        power = cash + extra_power if extra_power else cash
        for i in range(count):
            if status[i] != OrderStatus.filled:
                continue
            if delta[sequence[i]] < 0:
                power = power + (size[i] * adj[i] - fee[i])
            else:
                power, size[i], fee[i], status[i], reason[i] = buy(power, size[i], adj[i],
                                                                   fee[i], s, s.reject_reason)

    for i in range(count):
        if status[i] != OrderStatus.filled:
            size[i] = 0.0
            fee[i] = 0.0
        elif delta[sequence[i]] < 0:
            size[i] = -size[i]


@kernel
def submission_check(count, quantity, price, cash: float, fees: float, accepted) -> None:
    """Which orders survive a pseudo-execution in sequence at their creation prices.

    backtrader's check at submission: cash moves by each order's notional and commission;
    an order after which it is negative is refused, and what it subtracted stays
    subtracted for the orders after it.
    """
    for i in range(count):
        q = quantity[i]
        value = abs(q) * price[i]
        cash = cash + value - value * fees if q < 0 else cash - value - value * fees
        accepted[i] = cash >= 0.0
