"""Pure array kernels that size and execute one batch of orders (docs/semantics.md).

A batch is every order due at one fill point. `requested_deltas` turns open orders into
share deltas at the batch's valuation; `execute_batch` runs them in sequence against the
cash, applying costs, share rounding and the cash policy. Nothing here touches the ledger
or the order book: the kernels return arrays and the loop books them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.book import (
    FEE_EXCEEDS_PROCEEDS,
    FILLED,
    INSUFFICIENT_CASH,
    NOOP,
    REJECTED,
    SHRUNK_TO_CASH,
    TARGET_PERCENT,
    TARGET_SHARES,
    TARGET_VALUE,
    OpenOrders,
)
from engine.core.config import BacktestConfig
from engine.core.ledger import ABS_TOL, REL_TOL


@dataclass(frozen=True)
class Costs:
    """Per-order cost model: fee = n·adj·fees + max(n·per_share, min_fee) + fixed_fee."""

    fees: float = 0.0
    per_share: float = 0.0
    min_fee: float = 0.0
    fixed_fee: float = 0.0
    slippage: float = 0.0

    @classmethod
    def from_config(cls, config: BacktestConfig) -> Costs:
        return cls(config.fees, config.per_share, config.min_fee, config.fixed_fee, config.slippage)

    @property
    def has_commission(self) -> bool:
        return self.per_share > 0 or self.min_fee > 0

    def fee(
        self, size: np.ndarray, adj_price: np.ndarray, notional: np.ndarray | None = None
    ) -> np.ndarray:
        """Fee of filled orders of `size` shares (> 0) at the slipped price."""
        fee = (size * adj_price if notional is None else notional) * self.fees
        if self.has_commission:
            fee = fee + np.maximum(size * self.per_share, self.min_fee)
        return fee + self.fixed_fee


@dataclass(frozen=True)
class BatchResult:
    """Outcome of a batch, one entry per order, in execution order."""

    sequence: np.ndarray  # positions in the batch, in the order the orders executed
    quantity: np.ndarray  # signed shares filled (0 unless filled)
    price: np.ndarray  # fill price including slippage
    fee: np.ndarray
    status: np.ndarray  # FILLED, REJECTED or NOOP
    reason: np.ndarray
    filled: np.ndarray  # execution-order positions of the filled orders


def size_orders(
    orders: OpenOrders, position: np.ndarray, book_value: float, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Requested share deltas and approximate cash values (the sequencing key).

    A target's delta is `target_value / price − position` and its value
    `target_value − position × price`, with `target_value` = `a × book_value`
    (`target_percent`), `a` (`target_value`) or `a × price` (`target_shares`); delta
    orders add their own amounts. Computed in this order so that results are bit-equal
    to vectorbt's.
    """
    kind, amount = orders.target_kind, orders.target_amount
    if len(kind) and (kind == TARGET_PERCENT).all():
        target_value = amount * book_value
        delta = target_value / price - position
        value = target_value - position * price
    else:
        target_value = np.where(
            kind == TARGET_SHARES,
            amount * price,
            np.where(kind == TARGET_VALUE, amount, amount * book_value),
        )
        shares = np.where(kind == TARGET_SHARES, amount, target_value / price)
        is_target = kind >= TARGET_SHARES
        delta = np.where(is_target, shares - position, 0.0)
        value = np.where(is_target, target_value - position * price, 0.0)
    if orders.add_shares is not None:
        delta = (delta + orders.add_shares + orders.add_value / price
                 + (orders.add_percent * book_value) / price)
        value = (value + orders.add_shares * price + orders.add_value
                 + orders.add_percent * book_value)
    return delta, value


def auto_sequence(order_value: np.ndarray) -> np.ndarray:
    """Sells first (largest first), then buys smallest first; ties keep asset order."""
    return np.argsort(order_value, kind="stable")


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


def execute_batch(
    delta: np.ndarray,
    position: np.ndarray,
    cash: float,
    price: np.ndarray,
    sequence: np.ndarray,
    costs: Costs,
    integer: bool,
    cash_policy: str,
    allow_short: bool,
    reject_reason: int = INSUFFICIENT_CASH,
    cap: np.ndarray | None = None,
) -> BatchResult:
    """Execute the orders of one batch in `sequence` against `cash`.

    `delta`, `position`, `price` and the optional `cap` (most shares each order may fill
    now) are aligned arrays over the batch; the result lists the orders in execution
    order. Sells never need cash; buys are checked one by one.
    """
    d = delta[sequence]
    p = price[sequence]
    n = len(d)
    is_sell = d < 0
    size = np.abs(d)
    if not allow_short:
        np.minimum(size, position[sequence], out=size, where=is_sell)
    if integer:
        np.floor(size, out=size)
    if cap is not None:
        np.minimum(size, cap[sequence], out=size)
    slip = costs.slippage
    adj = p * np.where(is_sell, 1.0 - slip, 1.0 + slip) if slip else p
    trades = size > ABS_TOL
    notional = size * adj
    fee = costs.fee(size, adj, notional)
    status = np.where(trades, np.int8(FILLED), np.int8(NOOP))
    reason = np.zeros(n, dtype=np.int8)

    sells = trades & is_sell
    if costs.fixed_fee or costs.has_commission:
        bad_sell = sells & (notional - fee < 0)
        if bad_sell.any():
            status[bad_sell] = REJECTED
            reason[bad_sell] = FEE_EXCEEDS_PROCEEDS
            sells &= ~bad_sell

    buys = (trades & ~is_sell).nonzero()[0]
    if len(buys) and cash_policy != "allow_negative":
        if sells[buys[0] :].any():
            _execute_in_sequence(sells, buys, size, adj, fee, status, reason, cash, costs,
                                 integer, cash_policy, reject_reason)
        else:
            flows = np.empty(int(sells.sum()) + 1)
            flows[0] = cash
            np.subtract(notional[sells], fee[sells], out=flows[1:])
            _execute_buys(buys, size, adj, fee, status, reason, float(np.cumsum(flows)[-1]),
                          costs, integer, cash_policy, reject_reason)

    not_filled = status != FILLED
    np.negative(size, out=size, where=is_sell)
    size[not_filled] = 0.0
    fee[not_filled] = 0.0
    return BatchResult(sequence, size, adj, fee, status, reason, (~not_filled).nonzero()[0])


def _execute_buys(
    buys: np.ndarray,
    size: np.ndarray,
    adj: np.ndarray,
    fee: np.ndarray,
    status: np.ndarray,
    reason: np.ndarray,
    cash: float,
    costs: Costs,
    integer: bool,
    cash_policy: str,
    reject_reason: int = INSUFFICIENT_CASH,
) -> None:
    """Fill the buys in order against `cash`; writes size, fee, status and reason in place.

    Cash after each buy snaps to exactly 0 when it is float dust (as in `ledger`), and a
    buy facing zero cash is rejected. The vectorized pass finds the first buy that
    overdraws or leaves dust; from there on the buys run one at a time.
    """
    cost = size[buys] * adj[buys] + fee[buys]
    steps = np.empty(len(buys) + 1)
    steps[0] = cash
    np.negative(cost, out=steps[1:])
    cash_after = steps.cumsum()
    before, after = cash_after[:-1], cash_after[1:]
    stop = after <= REL_TOL * before + ABS_TOL  # overdrawn, or within float dust of 0
    if not stop.any():
        return
    first = int(stop.argmax())
    left = float(before[first])
    for i in buys[first:].tolist():
        left = _buy(i, left, size, adj, fee, status, reason, costs, integer, cash_policy,
                    reject_reason)


def _buy(
    i: int, left: float, size: np.ndarray, adj: np.ndarray, fee: np.ndarray,
    status: np.ndarray, reason: np.ndarray, costs: Costs, integer: bool, cash_policy: str,
    reject_reason: int,
) -> float:
    """Execute buy `i` against `left` cash (fits, shrinks or is rejected); the cash after."""
    if abs(left) <= ABS_TOL:
        left = 0.0
    need = size[i] * adj[i] + fee[i]
    if left > 0 and (need <= left or _close(need, left)):
        return 0.0 if _close(left, need) else left - need
    if cash_policy == "reject" or left <= 0:
        status[i], reason[i] = REJECTED, reject_reason
        return left
    shrunk, shrunk_fee, left_after = _shrink(left, adj[i], costs, integer)
    if shrunk is None:
        status[i], reason[i] = REJECTED, reject_reason
        return left
    size[i], fee[i] = shrunk, shrunk_fee
    status[i], reason[i] = FILLED, SHRUNK_TO_CASH
    return left_after


def _execute_in_sequence(
    sells: np.ndarray, buys: np.ndarray, size: np.ndarray, adj: np.ndarray, fee: np.ndarray,
    status: np.ndarray, reason: np.ndarray, cash: float, costs: Costs, integer: bool,
    cash_policy: str, reject_reason: int,
) -> None:
    """Sells and buys interleaved (submission order): each in turn against the cash left."""
    is_buy = np.zeros(len(size), dtype=bool)
    is_buy[buys] = True
    for i in (sells | is_buy).nonzero()[0].tolist():
        if is_buy[i]:
            cash = _buy(i, cash, size, adj, fee, status, reason, costs, integer, cash_policy,
                        reject_reason)
        else:
            cash = cash + (size[i] * adj[i] - fee[i])


def submission_check(
    quantity: np.ndarray, price: np.ndarray, cash: float, costs: Costs
) -> np.ndarray:
    """Which orders survive a pseudo-execution in sequence at their creation prices.

    backtrader's check at submission: cash moves by each order's notional and commission;
    an order after which it is negative is refused, and what it subtracted stays
    subtracted for the orders after it.
    """
    accepted = np.zeros(len(quantity), dtype=bool)
    for i, (q, p) in enumerate(zip(quantity.tolist(), price.tolist(), strict=True)):
        value = abs(q) * p
        cash = cash + value - value * costs.fees if q < 0 else cash - value - value * costs.fees
        accepted[i] = cash >= 0.0
    return accepted


def _shrink(
    cash: float, adj: float, costs: Costs, integer: bool
) -> tuple[float | None, float, float]:
    """Largest buy that `cash` pays for: (size, fee, cash left); size None if nothing fits."""
    if costs.has_commission:
        unit = adj * (1.0 + costs.fees)
        size = (cash - costs.fixed_fee) / (unit + costs.per_share)
        if size * costs.per_share < costs.min_fee:
            size = (cash - costs.fixed_fee - costs.min_fee) / unit
        exact = False
    else:
        max_spend = (cash - costs.fixed_fee) / (1.0 + costs.fees)
        if max_spend <= 0:
            return None, 0.0, cash
        size = max_spend / adj
        exact = True
    if integer:
        size = size // 1.0
        exact = False
    if not size > ABS_TOL:
        return None, 0.0, cash
    if exact:
        return size, cash - max_spend, 0.0
    fee = float(costs.fee(np.array([size]), np.array([adj]))[0])
    left = cash - (size * adj + fee)
    return size, fee, 0.0 if _close(left, 0.0) or _close(size * adj + fee, cash) else left
