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

- `run_reference(prices, config=config, resting=table)`: an order table (`timestamp,
  asset, type, quantity, limit_price, stop_price, trail, trail_mode, valid_until, group,
  id, parent`; docs/semantics.md, "Order tables, settings and outputs"), alone or on top
  of weights or order calls (its rows come after them at each decision).

The settings' risk rules (`stop_loss`, `take_profit`, `trailing_stop`, `max_bars`,
`max_positions`, `max_gross`, `max_weight`, `halt_drawdown`) and intra-bar settings
(`intrabar_path`, `stop_first`, `stop_base`, `trail_source`) apply to every run.

Results: `fills` (`timestamp, asset, quantity, price, fee, order_id, trigger`), `orders`
(every call and order with its status and reason; resting orders with `type`,
`limit_price`, `stop_price`, `trail`, `valid_until` (last bar), `parent`, `group`),
`equity` (`timestamp, cash, positions_value, equity`), `final_equity` and `rejections`
(`timestamp, asset, reason`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from engine.reference.bars import Bars
from engine.reference.journal import Journal, Unrecorded
from engine.reference.orders import KINDS, Call, Rebalance
from engine.reference.resting import order_table_rows
from engine.reference.rules import Rules, rules_for
from engine.reference.simulation import Book, Place, Simulation

__all__ = ["Bars", "Book", "Call", "Journal", "Place", "Rebalance", "ReferenceResult", "Rules",
           "Simulation", "Unrecorded", "decisions_from_orders", "decisions_from_weights",
           "rules_for", "run_reference"]


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


def decisions_from_table(bars: Bars, table: pl.DataFrame) -> dict[int, list]:
    """One `Place` per row of an order table, per bar in row order."""
    rows = order_table_rows(table)
    index = bars.index_of(list({row["timestamp"] for row in rows}))
    decisions: dict[int, list] = {}
    for row in rows:
        decisions.setdefault(index[row["timestamp"]], []).append(Place(row))
    return decisions


def run_reference(
    prices: pl.DataFrame, weights: pl.DataFrame | None = None, config: Any = None,
    orders: pl.DataFrame | None = None, rules: Rules | None = None,
    resting: pl.DataFrame | None = None,
) -> ReferenceResult:
    """Run target weights (or order calls) and an order table through the reference loop.

    `config` is a `BacktestConfig` or its dict (profile included); `rules` overrides it.
    `resting` is an order table (market, limit, stop, stop-limit, trailing stop rows).
    """
    settings = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    rules = rules or rules_for(settings)
    bars = Bars.from_frame(prices)
    decisions = (decisions_from_weights(bars, weights) if weights is not None
                 else decisions_from_orders(bars, orders) if orders is not None else {})
    if resting is not None:
        for bar, places in decisions_from_table(bars, resting).items():
            decisions[bar] = [*decisions.get(bar, []), *places]
    initial_cash = float(settings.get("initial_cash", 1_000_000.0))
    sim = Simulation(bars, decisions, rules, initial_cash).run()
    return _result(sim, bars, initial_cash)


def _result(sim: Simulation, bars: Bars, initial_cash: float) -> ReferenceResult:
    stamps = bars.timestamps
    time_type = bars.time_type
    triggers = sim.triggers
    fills = pl.DataFrame(
        [(stamps[t], a, q, p, f, i, triggers.get(i, "market")) for t, a, q, p, f, i in sim.fills],
        schema={"timestamp": time_type, "asset": pl.String, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64,
                "trigger": pl.String},
        orient="row")
    resting = sim.resting_orders
    last = len(stamps) - 1
    group_ids: dict[Any, int] = {}  # an OCO group is named by its first order's id
    for i in sorted(resting):
        if resting[i].group is not None:
            group_ids.setdefault(resting[i].group, i)

    def details(i: int) -> tuple:
        o = resting.get(i)
        if o is None:
            return ("market", None, None, None, None, None, None, "user")
        valid = None if o.last_bar is None else stamps[min(o.last_bar, last)]
        origin = o.trigger if o.close_position else "user"  # a rule's exit closes the position
        return (o.type, o.limit, o.stop, o.trail, valid, o.parent, group_ids.get(o.group),
                origin)

    orders = pl.DataFrame(
        [(o.id, stamps[o.created], o.asset, o.kind if o.kind in KINDS else "shares",
          float(o.amount), o.status, o.reason,
          None if o.filled_at is None else stamps[o.filled_at], float(o.filled_quantity),
          *details(o.id))
         for o in sim.orders],
        schema={"order_id": pl.Int64, "created": time_type, "asset": pl.String,
                "kind": pl.String, "amount": pl.Float64, "status": pl.String,
                "reason": pl.String, "filled_at": time_type, "filled_quantity": pl.Float64,
                "type": pl.String, "limit_price": pl.Float64, "stop_price": pl.Float64,
                "trail": pl.Float64, "valid_until": time_type, "parent": pl.Int64,
                "group": pl.Int64, "origin": pl.String},
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
