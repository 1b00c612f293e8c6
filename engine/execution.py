"""Pure array kernels that size and execute one batch of orders (docs/semantics.md).

A batch is every order due at one fill point. `requested_deltas` turns open orders into
share deltas at the batch's valuation; `execute_batch` runs them in sequence against the
cash, applying costs, share rounding and the cash policy. Nothing here touches the ledger
or the order book: the kernels return arrays and the loop books them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.book import (
    FEE_EXCEEDS_PROCEEDS,
    FILLED,
    INSUFFICIENT_CASH,
    NO_REASON,
    NOOP,
    REJECTED,
    SHRUNK_TO_CASH,
    TARGET_SHARES,
    TARGET_VALUE,
)
from engine.config import BacktestConfig

REL_TOL = 1e-9
ABS_TOL = 1e-12


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

    def fee(self, size: np.ndarray, adj_price: np.ndarray) -> np.ndarray:
        """Fee of filled orders of `size` shares (> 0) at the slipped price."""
        fee = size * adj_price * self.fees
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

    @property
    def filled(self) -> np.ndarray:
        return self.status == FILLED


def requested_deltas(
    target_kind: np.ndarray,
    target_amount: np.ndarray,
    add_shares: np.ndarray,
    add_value: np.ndarray,
    add_percent: np.ndarray,
    position: np.ndarray,
    book_value: float,
    price: np.ndarray,
) -> np.ndarray:
    """Share deltas requested by open orders, valued at `price` and `book_value`."""
    base = np.where(
        target_kind == TARGET_SHARES,
        target_amount,
        np.where(
            target_kind == TARGET_VALUE,
            target_amount / price,
            (target_amount * book_value) / price,
        ),
    )
    delta = np.where(target_kind >= TARGET_SHARES, base - position, 0.0)
    return delta + add_shares + add_value / price + (add_percent * book_value) / price


def approximate_values(
    target_kind: np.ndarray,
    target_amount: np.ndarray,
    add_shares: np.ndarray,
    add_value: np.ndarray,
    add_percent: np.ndarray,
    position: np.ndarray,
    book_value: float,
    price: np.ndarray,
) -> np.ndarray:
    """Cash value each open order would trade, before costs: the sequencing key."""
    held_value = position * price
    target_value = np.where(
        target_kind == TARGET_SHARES,
        target_amount * price,
        np.where(target_kind == TARGET_VALUE, target_amount, target_amount * book_value),
    )
    value = np.where(target_kind >= TARGET_SHARES, target_value - held_value, 0.0)
    return value + add_shares * price + add_value + add_percent * book_value


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
) -> BatchResult:
    """Execute the orders of one batch in `sequence` against `cash`.

    `delta`, `position` and `price` are aligned arrays over the batch; the result lists
    the orders in execution order. Sells never need cash; buys are checked one by one.
    """
    d = delta[sequence]
    pos = position[sequence]
    p = price[sequence]
    n = len(d)
    status = np.full(n, NOOP, dtype=np.int8)
    reason = np.full(n, NO_REASON, dtype=np.int8)

    is_sell = d < 0
    size = np.abs(d)
    if not allow_short:
        size = np.where(is_sell, np.minimum(size, np.maximum(pos, 0.0)), size)
    if integer:
        size = size // 1.0
    adj = np.where(is_sell, p * (1.0 - costs.slippage), p * (1.0 + costs.slippage))
    trades = size > ABS_TOL
    fee = np.zeros(n)
    fee[trades] = costs.fee(size[trades], adj[trades])
    notional = size * adj

    sells = trades & is_sell
    bad_sell = sells & (notional - fee < 0)
    status[sells] = FILLED
    status[bad_sell] = REJECTED
    reason[bad_sell] = FEE_EXCEEDS_PROCEEDS

    buys = np.flatnonzero(trades & ~is_sell)
    if len(buys):
        if sells[buys[0] :].any():
            raise NotImplementedError("a sell sequenced after a buy in one batch")
        ok_sells = sells & ~bad_sell
        flows = np.empty(int(ok_sells.sum()) + 1)
        flows[0] = cash
        flows[1:] = notional[ok_sells] - fee[ok_sells]
        cash_after_sells = float(np.cumsum(flows)[-1])
        _execute_buys(
            buys, size, adj, fee, status, reason, cash_after_sells, costs, integer, cash_policy
        )

    filled = status == FILLED
    quantity = np.where(filled, np.where(is_sell, -size, size), 0.0)
    fee = np.where(filled, fee, 0.0)
    return BatchResult(sequence, quantity, adj, fee, status, reason)


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
) -> None:
    """Fill the buys in order against `cash`; writes size, fee, status and reason in place."""
    cost = size[buys] * adj[buys] + fee[buys]
    if cash_policy == "allow_negative":
        status[buys] = FILLED
        return
    steps = np.empty(len(buys) + 1)
    steps[0] = cash
    steps[1:] = -cost
    cash_before = np.cumsum(steps)[:-1]
    fits = (cost <= cash_before) | (
        np.abs(cost - cash_before)
        <= np.maximum(REL_TOL * np.maximum(np.abs(cost), np.abs(cash_before)), ABS_TOL)
    )
    short = np.flatnonzero(~fits)
    first = len(buys) if len(short) == 0 else int(short[0])
    status[buys[:first]] = FILLED
    if first == len(buys):
        return
    left = float(cash_before[first])
    for i in buys[first:].tolist():
        if _close(left, 0.0):
            left = 0.0
        need = size[i] * adj[i] + fee[i]
        if need <= left or _close(need, left):
            status[i] = FILLED
            left = left - need
            continue
        if cash_policy == "reject" or left <= 0:
            status[i], reason[i] = REJECTED, INSUFFICIENT_CASH
            continue
        shrunk, shrunk_fee, left_after = _shrink(left, adj[i], costs, integer)
        if shrunk is None:
            status[i], reason[i] = REJECTED, INSUFFICIENT_CASH
            continue
        size[i], fee[i] = shrunk, shrunk_fee
        status[i], reason[i] = FILLED, SHRUNK_TO_CASH
        left = left_after


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
