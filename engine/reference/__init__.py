"""The reference: the contract as a plain per-order loop, and the switchable oracle.

It shares no simulation code with the engine (it imports nothing from `engine` outside this
package) and favours clarity over speed: floats, dicts and one loop per bar. It checks the
engine (they must agree to 1e-9 on every fill, under every profile), and it is the oracle
the gap analysis replays other engines with: every semantic choice and every classic bug is
a field of `Rules`, and a `Simulation` can be stepped bar by bar from any book.

- `run_reference(prices, weights, config)`: target weights (`timestamp, asset, weight`,
  each timestamp a decision at its close), as `rebalance` calls.
- `run_reference(prices, orders=orders, config=config)`: order calls
  (`timestamp, asset, kind, amount`, in the order they were made; `kind` one of `shares,
  value, percent, target_shares, target_value, target_percent`).

Results: `fills` (`timestamp, asset, quantity, price, fee, order_id`), `orders` (every call
with its status and reason), `equity` (`timestamp, cash, positions_value, equity`),
`final_equity` and `rejections` (`timestamp, asset, reason`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from engine.reference.bars import Bars
from engine.reference.orders import KINDS, Call, Rebalance
from engine.reference.rules import Rules, rules_for
from engine.reference.simulation import Book, Simulation

__all__ = ["Bars", "Book", "Call", "Rebalance", "ReferenceResult", "Rules", "Simulation",
           "decisions_from_orders", "decisions_from_weights", "rules_for", "run_reference"]


@dataclass(frozen=True)
class ReferenceResult:
    """Everything the reference run produced, as plain frames and one number."""

    fills: pl.DataFrame
    orders: pl.DataFrame
    equity: pl.DataFrame
    final_equity: float
    rejections: pl.DataFrame


def decisions_from_weights(bars: Bars, weights: pl.DataFrame) -> dict[int, list]:
    """One `Rebalance` per decision timestamp of `timestamp, asset, weight`."""
    index = bars.index_of(weights["timestamp"].unique().to_list())
    decisions: dict[int, dict[str, float]] = {}
    for t, asset, weight in weights.select("timestamp", "asset", "weight").iter_rows():
        decisions.setdefault(index[t], {})[asset] = float(weight)
    return {bar: [Rebalance(w)] for bar, w in decisions.items()}


def decisions_from_orders(bars: Bars, orders: pl.DataFrame) -> dict[int, list]:
    """The calls of `timestamp, asset, kind, amount`, per bar in row order."""
    index = bars.index_of(orders["timestamp"].unique().to_list())
    decisions: dict[int, list] = {}
    for t, asset, kind, amount in orders.select("timestamp", "asset", "kind",
                                                "amount").iter_rows():
        if kind not in KINDS:
            raise ValueError(f"order kind must be one of {', '.join(KINDS)}; got {kind!r}")
        decisions.setdefault(index[t], []).append(Call(kind, asset, float(amount)))
    return decisions


def run_reference(
    prices: pl.DataFrame, weights: pl.DataFrame | None = None, config: Any = None,
    orders: pl.DataFrame | None = None, rules: Rules | None = None,
) -> ReferenceResult:
    """Run target weights (or order calls) through the reference loop.

    `config` is a `BacktestConfig` or its dict (profile included); `rules` overrides it.
    """
    settings = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    rules = rules or rules_for(settings)
    bars = Bars.from_frame(prices)
    decisions = (decisions_from_weights(bars, weights) if weights is not None
                 else decisions_from_orders(bars, orders) if orders is not None else {})
    initial_cash = float(settings.get("initial_cash", 1_000_000.0))
    sim = Simulation(bars, decisions, rules, initial_cash).run()
    return _result(sim, bars, initial_cash)


def _result(sim: Simulation, bars: Bars, initial_cash: float) -> ReferenceResult:
    stamps = bars.timestamps
    time_type = bars.time_type
    fills = pl.DataFrame(
        [(stamps[t], a, q, p, f, i) for t, a, q, p, f, i in sim.fills],
        schema={"timestamp": time_type, "asset": pl.String, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64},
        orient="row")
    orders = pl.DataFrame(
        [(i, stamps[c], a, k, float(m), s, r, None if f is None else stamps[f], float(q))
         for i, c, a, k, m, s, r, f, q in sim.orders],
        schema={"order_id": pl.Int64, "created": time_type, "asset": pl.String,
                "kind": pl.String, "amount": pl.Float64, "status": pl.String,
                "reason": pl.String, "filled_at": time_type, "filled_quantity": pl.Float64},
        orient="row")
    equity = pl.DataFrame(
        [(stamps[t], cash, value, cash + value) for t, (cash, value) in enumerate(sim.equity)],
        schema={"timestamp": time_type, "cash": pl.Float64, "positions_value": pl.Float64,
                "equity": pl.Float64},
        orient="row")
    rejections = pl.DataFrame(
        [(stamps[t], a, r) for t, a, r in sim.rejections],
        schema={"timestamp": time_type, "asset": pl.String, "reason": pl.String},
        orient="row")
    final = sim.equity[-1][0] + sim.equity[-1][1] if sim.equity else initial_cash
    return ReferenceResult(fills, orders, equity, final, rejections)
