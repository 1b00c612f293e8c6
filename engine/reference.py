"""Reference backtest: target-weight rebalancing as a plain loop over floats and dicts.

This is the ground truth the engine is checked against, so it shares no simulation code with
it and favours clarity over speed. It implements docs/semantics.md for target weights:

- Prices are a long frame `timestamp, asset, open, high, low, close, volume`, sorted and
  validated. The calendar is the sorted set of its timestamps; assets are handled in name
  order. An asset may lack a bar at some timestamps.
- Weights `timestamp, asset, weight`: the rows at `t` are one decision at the close of `t`.
  Assets with a non-zero weight get a `target_percent` order; assets held or with an open
  order and without a non-zero weight get `target_percent = 0`. A new order on an asset
  replaces its open one.
- Fill timing (`BacktestConfig.fill`): `next_open` fills at the open of the asset's next bar,
  `next_close` at its close, `same_close` at the close of the decision bar right after the
  decision. An order whose asset has no bar at its fill point waits for the asset's next bar.
- Each fill batch is sized once from the book value at the fill point, sorted by order value
  (sells first, largest first; then buys, smallest first) and executed one order at a time
  against the cash left, with fees, slippage, integer shares and the cash policy applied.
  The order value of a target `w` is computed as `w × value − position × price`, which is
  `delta × price` in exact arithmetic and bit-equal to vectorbt's sequencing key (so equal
  weights from an empty book tie exactly and keep asset order).
- Equity at every timestamp is `cash + Σ position × close` after all fills of that timestamp,
  an asset without a bar being marked at its last known close.

Results: `fills` (`timestamp, asset, quantity, price, fee, order_id`; signed quantity, price
including slippage), `orders` (every order with its status and reason, numbered in the order
they were placed: asset-name order within a decision), `equity` (`timestamp, cash,
positions_value, equity`), `final_equity` and `rejections` (`timestamp, asset, reason`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from engine.core.config import BacktestConfig

RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12
OPEN, CLOSE = 0, 1


@dataclass(frozen=True)
class ReferenceResult:
    """Everything the reference run produced, as plain frames and one number."""

    fills: pl.DataFrame
    orders: pl.DataFrame
    equity: pl.DataFrame
    final_equity: float
    rejections: pl.DataFrame


@dataclass
class _State:
    """The ledger (cash, positions), the open orders and what has been recorded so far."""

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    last_close: dict[str, float] = field(default_factory=dict)
    open_orders: dict[str, tuple[int, float]] = field(default_factory=dict)
    orders: list[list] = field(default_factory=list)
    fills: list[tuple[datetime, str, float, float, float, int]] = field(default_factory=list)
    rejections: list[tuple[datetime, str, str]] = field(default_factory=list)
    equity: list[tuple[datetime, float, float, float]] = field(default_factory=list)


def run_reference(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig | None = None
) -> ReferenceResult:
    """Run target weights through the reference loop and return its fills and equity."""
    config = config or BacktestConfig()
    bars = _bars_by_timestamp(prices)
    decisions = _decisions_by_timestamp(weights)
    state = _State(cash=float(config.initial_cash))

    for timestamp in sorted(bars):
        bars_now = bars[timestamp]
        if config.fill == "next_open":
            _fill_batch(state, config, timestamp, bars_now, OPEN)
        elif config.fill == "next_close":
            _fill_batch(state, config, timestamp, bars_now, CLOSE)
        for asset, bar in bars_now.items():
            state.last_close[asset] = bar[CLOSE]
        if timestamp in decisions:
            _decide(state, timestamp, decisions[timestamp])
        if config.fill == "same_close":
            _fill_batch(state, config, timestamp, bars_now, CLOSE)
        _mark(state, timestamp)

    time_type = prices.schema["timestamp"]
    return ReferenceResult(
        fills=pl.DataFrame(
            state.fills,
            schema={
                "timestamp": time_type,
                "asset": pl.String,
                "quantity": pl.Float64,
                "price": pl.Float64,
                "fee": pl.Float64,
                "order_id": pl.Int64,
            },
            orient="row",
        ),
        orders=pl.DataFrame(
            state.orders,
            schema={
                "order_id": pl.Int64,
                "created": time_type,
                "asset": pl.String,
                "kind": pl.String,
                "amount": pl.Float64,
                "status": pl.String,
                "reason": pl.String,
                "filled_at": time_type,
                "filled_quantity": pl.Float64,
            },
            orient="row",
        ),
        equity=pl.DataFrame(
            state.equity,
            schema={
                "timestamp": time_type,
                "cash": pl.Float64,
                "positions_value": pl.Float64,
                "equity": pl.Float64,
            },
            orient="row",
        ),
        final_equity=state.equity[-1][3] if state.equity else float(config.initial_cash),
        rejections=pl.DataFrame(
            state.rejections,
            schema={"timestamp": time_type, "asset": pl.String, "reason": pl.String},
            orient="row",
        ),
    )


def _bars_by_timestamp(prices: pl.DataFrame) -> dict[datetime, dict[str, tuple[float, float]]]:
    """{timestamp: {asset: (open, close)}} for every bar."""
    bars: dict[datetime, dict[str, tuple[float, float]]] = {}
    rows = prices.select("timestamp", "asset", "open", "close").iter_rows()
    for timestamp, asset, open_price, close_price in rows:
        bars.setdefault(timestamp, {})[asset] = (float(open_price), float(close_price))
    return bars


def _decisions_by_timestamp(weights: pl.DataFrame) -> dict[datetime, dict[str, float]]:
    """{timestamp: {asset: weight}} for every decision."""
    decisions: dict[datetime, dict[str, float]] = {}
    for timestamp, asset, weight in weights.select("timestamp", "asset", "weight").iter_rows():
        decisions.setdefault(timestamp, {})[asset] = float(weight)
    return decisions


def _decide(state: _State, timestamp: datetime, weights: dict[str, float]) -> None:
    """Queue one target_percent order per asset with a weight, held or with an open order."""
    targets = {asset: weight for asset, weight in weights.items() if weight != 0.0}
    held = {asset for asset, quantity in state.positions.items() if quantity != 0.0}
    for asset in held | set(state.open_orders):
        targets.setdefault(asset, 0.0)
    for asset in sorted(targets):
        order_id = len(state.orders)
        if asset in state.open_orders:
            replaced = state.orders[state.open_orders[asset][0]]
            replaced[5], replaced[6] = "replaced", f"replaced by order {order_id}"
        state.orders.append(
            [order_id, timestamp, asset, "target_percent", targets[asset], "open", None, None, 0.0]
        )
        state.open_orders[asset] = (order_id, targets[asset])


def _close_order(
    state: _State, order_id: int, status: str, reason: str | None = None,
    timestamp: datetime | None = None, quantity: float = 0.0,
) -> None:
    """Record what became of an order."""
    state.orders[order_id][5:] = [status, reason, timestamp, quantity]


def _fill_batch(
    state: _State,
    config: BacktestConfig,
    timestamp: datetime,
    bars_now: dict[str, tuple[float, float]],
    price_field: int,
) -> None:
    """Size, sequence and execute every open order whose asset has a bar now."""
    due = [asset for asset in sorted(state.open_orders) if asset in bars_now]
    if not due:
        return

    value = state.cash
    for asset in sorted(state.positions):
        quantity = state.positions[asset]
        if quantity != 0.0:
            if asset in bars_now:
                valuation_price = bars_now[asset][price_field]
            else:
                valuation_price = state.last_close[asset]
            value += quantity * valuation_price

    requests = []
    for asset in due:
        order_id, weight = state.open_orders.pop(asset)
        price = bars_now[asset][price_field]
        position = state.positions.get(asset, 0.0)
        target_value = weight * value
        delta = (target_value / price) - position
        order_value = target_value - position * price
        requests.append((order_value, asset, delta, price, order_id))
    requests.sort(key=lambda request: request[0])

    for _, asset, delta, price, order_id in requests:
        if delta > 0:
            _buy(state, config, timestamp, asset, delta, price, order_id)
        else:
            _sell(state, config, timestamp, asset, -delta, price, order_id)


def _buy(
    state: _State,
    config: BacktestConfig,
    timestamp: datetime,
    asset: str,
    size: float,
    price: float,
    order_id: int,
) -> None:
    """Buy `size` shares at `price` plus slippage, within the cash policy."""
    if config.integer_shares:
        size = size // 1
    if size <= ABSOLUTE_TOLERANCE:
        _close_order(state, order_id, "noop")
        return
    reason = None
    adjusted = price * (1 + config.slippage)
    fee = _fee(size, adjusted, config)
    cost = size * adjusted + fee
    cash_after: float | None = None

    if not _fits(cost, state.cash):
        if config.cash_policy == "reject":
            _reject(state, order_id, timestamp, asset, "insufficient_cash")
            return
        if config.cash_policy == "shrink":
            size, fee, cash_after = _shrink(state.cash, adjusted, config)
            if size <= ABSOLUTE_TOLERANCE:
                _reject(state, order_id, timestamp, asset, "insufficient_cash")
                return
            cost = size * adjusted + fee
            reason = "shrunk_to_cash"

    state.cash = cash_after if cash_after is not None else _add(state.cash, -cost)
    state.positions[asset] = _add(state.positions.get(asset, 0.0), size)
    state.fills.append((timestamp, asset, size, adjusted, fee, order_id))
    _close_order(state, order_id, "filled", reason, timestamp, size)


def _shrink(
    cash: float, adjusted: float, config: BacktestConfig
) -> tuple[float, float, float | None]:
    """The largest buy that `cash` pays for: (size, fee, cash left if it is set exactly).

    Without per-share commission the fee is solved with the size and the cash left is
    exactly 0. With it, the size is the largest `n` with
    `n × adj × (1 + fees) + max(n × per_share, min_fee) + fixed_fee ≤ cash`.
    """
    if config.per_share == 0.0 and config.min_fee == 0.0:
        spend = (cash - config.fixed_fee) / (1 + config.fees)
        size = spend / adjusted
        if not config.integer_shares:
            return size, cash - spend, 0.0
    else:
        unit_cost = adjusted * (1 + config.fees)
        minimum_binds = config.per_share == 0.0 or (
            (config.min_fee / config.per_share) * unit_cost + config.min_fee + config.fixed_fee
            > cash
        )
        if minimum_binds:
            size = (cash - config.fixed_fee - config.min_fee) / unit_cost
        else:
            size = (cash - config.fixed_fee) / (unit_cost + config.per_share)
    if config.integer_shares:
        size = size // 1
    return size, _fee(size, adjusted, config), None


def _sell(
    state: _State,
    config: BacktestConfig,
    timestamp: datetime,
    asset: str,
    size: float,
    price: float,
    order_id: int,
) -> None:
    """Sell `size` shares at `price` less slippage, capped at the position when long-only."""
    position = state.positions.get(asset, 0.0)
    if not config.allow_short:
        size = min(position, size)
    if config.integer_shares:
        size = size // 1
    if size <= ABSOLUTE_TOLERANCE:
        _close_order(state, order_id, "noop")
        return
    adjusted = price * (1 - config.slippage)
    fee = _fee(size, adjusted, config)
    proceeds = _add(size * adjusted, -fee)
    if proceeds < 0:
        _reject(state, order_id, timestamp, asset, "fee_exceeds_proceeds")
        return
    state.cash = _add(state.cash, proceeds)
    state.positions[asset] = _add(position, -size)
    state.fills.append((timestamp, asset, -size, adjusted, fee, order_id))
    _close_order(state, order_id, "filled", None, timestamp, -size)


def _reject(state: _State, order_id: int, timestamp: datetime, asset: str, reason: str) -> None:
    state.rejections.append((timestamp, asset, reason))
    _close_order(state, order_id, "rejected", reason)


def _mark(state: _State, timestamp: datetime) -> None:
    """Record cash, positions at their last known close, and equity."""
    positions_value = 0.0
    for asset in sorted(state.positions):
        quantity = state.positions[asset]
        if quantity != 0.0:
            positions_value += quantity * state.last_close[asset]
    state.equity.append((timestamp, state.cash, positions_value, state.cash + positions_value))


def _fee(size: float, adjusted: float, config: BacktestConfig) -> float:
    """Fee of `size` shares at the slipped price `adjusted`."""
    return (
        size * adjusted * config.fees
        + max(size * config.per_share, config.min_fee)
        + config.fixed_fee
    )


def _fits(cost: float, cash: float) -> bool:
    """Whether `cash` pays for `cost`, counting a cost within float noise of it as paid."""
    return cost <= cash or abs(cost - cash) <= max(
        RELATIVE_TOLERANCE * max(abs(cost), abs(cash)), ABSOLUTE_TOLERANCE
    )


def _add(a: float, b: float) -> float:
    """`a + b`, exactly 0.0 when the sum is float noise relative to its terms.

    With opposite signs `|a + b|` equals `||a| − |b||`, so one test covers both rules of
    the contract: opposite signs within 1e-9 relative (or 1e-12) of each other, and same
    signs summing to at most 1e-12.
    """
    total = a + b
    if abs(total) <= max(RELATIVE_TOLERANCE * max(abs(a), abs(b)), ABSOLUTE_TOLERANCE):
        return 0.0
    return total
