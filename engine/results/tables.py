"""A finished backtest as tables: fills are the primary record, the rest is derived."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.core.kernels import NEVER
from engine.core.loop import Simulation
from engine.core.records import (
    FILL_DT,
    KIND_NAMES,
    ORIGIN_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    TYPE_NAMES,
    Origin,
    Reason,
)
from engine.results.artifacts import to_json, write_output, write_parquet
from engine.results.holdings import holdings
from engine.results.metrics import compute_metrics
from engine.results.trades import trades_table

ORDER_FIELDS = ("created_bar", "asset", "kind", "amount", "status", "reason", "superseded_by",
                "filled_bar", "filled_quantity", "type", "limit_price", "stop_price", "trail",
                "valid_until", "parent", "group", "origin")
TABLES = ("fills", "orders", "positions", "equity", "trades")


class BacktestResult:
    """The tables of one run: `fills`, `orders`, `positions`, `equity`, `trades`, `metrics`.

    Tables are built on first access from the simulation's arrays and then kept.
    """

    def __init__(self, simulation: Simulation) -> None:
        self._sim = simulation

    @property
    def config(self) -> BacktestConfig:
        return self._sim.config

    @cached_property
    def _fill_records(self) -> dict[str, np.ndarray]:
        """Each field of the ledger's journal, as a contiguous column (read in one pass)."""
        return self._sim.ledger.columns(FILL_DT.names)

    @cached_property
    def fills(self) -> pl.DataFrame:
        market = self._sim.market
        fills = self._fill_records
        return pl.DataFrame(
            {
                "timestamp": market.timestamps.gather(fills["bar"]),
                "asset": market.assets.gather(fills["asset"]),
                "quantity": fills["quantity"],
                "price": fills["price"],
                "fee": fills["fee"],
                "order_id": fills["order_id"],
                "trigger": self._triggers(np.maximum(fills["order_id"], 0)),
            }
        )

    @cached_property
    def _order_columns(self) -> dict[str, np.ndarray]:
        """The order fields the tables read, one column each (read in one pass)."""
        return self._sim.book.columns(ORDER_FIELDS)

    def _triggers(self, order_ids: np.ndarray) -> pl.Series:
        """What fired each of the orders `order_ids`: the risk rule that created it, else
        its type (named per fill, not per order placed)."""
        orders = self._order_columns
        origin = orders["origin"][order_ids]
        return _named(orders["type"][order_ids], TYPE_NAMES, origin, origin != Origin.user)

    @cached_property
    def orders(self) -> pl.DataFrame:
        market = self._sim.market
        orders = self._order_columns
        codes = orders["reason"]
        reason = _named(codes, REASON_NAMES, orders["origin"],
                        (codes == Reason.none) & (orders["origin"] != Origin.user))
        superseded = np.flatnonzero(orders["reason"] == Reason.superseded)
        if len(superseded):
            merged = orders["status"][superseded] == STATUS_NAMES.index("merged")
            text = pl.select(pl.format(
                "{} order {}",
                pl.Series(np.where(merged, "merged into", "replaced by")),
                pl.Series(orders["superseded_by"][superseded]),
            )).to_series()
            reason = reason.scatter(superseded, text)
        last = market.n_bars - 1
        filled_bar, valid_until = orders["filled_bar"], orders["valid_until"]
        stamps = market.timestamps
        return pl.DataFrame(
            {
                "order_id": np.arange(len(codes), dtype=np.int64),
                "created": stamps.gather(orders["created_bar"]),
                "asset": market.assets.gather(orders["asset"]),
                "kind": pl.Series(KIND_NAMES).gather(orders["kind"]),
                "amount": orders["amount"],
                "status": pl.Series(STATUS_NAMES).gather(orders["status"]),
                "reason": reason,
                "filled_at": _gather_or_null(stamps, filled_bar, filled_bar >= 0),
                "filled_quantity": orders["filled_quantity"],
                "type": pl.Series(TYPE_NAMES).gather(orders["type"]),
                "limit_price": _nan_to_null(orders["limit_price"]),
                "stop_price": _nan_to_null(orders["stop_price"]),
                "trail": _nan_to_null(orders["trail"]),
                "valid_until": _gather_or_null(stamps, np.clip(valid_until, 0, last),
                                               (valid_until != NEVER) & (valid_until <= last)),
                "parent": _where_or_null(orders["parent"], orders["parent"] >= 0),
                "group": _where_or_null(orders["group"], orders["group"] >= 0),
                "origin": pl.Series(ORIGIN_NAMES).gather(orders["origin"]),
            }
        )

    @cached_property
    def equity(self) -> pl.DataFrame:
        sim = self._sim
        return pl.DataFrame(
            {
                "timestamp": sim.market.timestamps,
                "cash": sim.cash,
                "positions_value": sim.positions_value,
                "equity": sim.cash + sim.positions_value,
            }
        )

    @cached_property
    def positions(self) -> pl.DataFrame:
        market = self._sim.market
        bars, assets, quantity = holdings(self._fill_records, market.n_bars, market.n_assets)
        return pl.DataFrame(
            {
                "timestamp": market.timestamps.gather(bars),
                "asset": market.assets.gather(assets),
                "quantity": quantity,
                "market_value": quantity * market.last_close[bars, assets],
            }
        )

    @cached_property
    def trades(self) -> pl.DataFrame:
        market = self._sim.market
        fills = self._fill_records
        times = market.timestamps.cast(pl.Datetime("us")).to_physical().to_numpy()
        return trades_table(fills["asset"], market.assets, times[fills["bar"]],
                            fills["quantity"], fills["price"], fills["fee"],
                            np.asarray(market.last_close[-1]))

    @cached_property
    def metrics(self) -> dict[str, Any]:
        return compute_metrics(
            self.equity, self.fills, self.orders, self.trades,
            initial_cash=self.config.initial_cash,
            periods_per_year=self.config.periods_per_year,
        )

    @property
    def final_equity(self) -> float:
        sim = self._sim
        return float(sim.cash[-1] + sim.positions_value[-1])

    def tables(self) -> dict[str, pl.DataFrame]:
        """Every table by name (see `TABLES`)."""
        return {name: getattr(self, name) for name in TABLES}

    def validate(self) -> BacktestResult:
        """Check every table against its pandera model in `schemas.backtest`.

        A table that passes the model's declarations as read by `schemas.declared` (with
        polars, without importing pandera and pandas) is done; any other goes through
        pandera itself, which raises with the failing columns and rows."""
        from schemas.declared import conforms

        failing = [name for name in TABLES
                   if not conforms(getattr(self, name), "schemas.backtest", name.capitalize())]
        if failing:
            from schemas import backtest as schemas

            for name in failing:
                getattr(schemas, name.capitalize()).validate(getattr(self, name), lazy=True)
        return self

    def save(self, out_dir: str | Path, inputs: Iterable[str | Path | None] = (),
             force: bool = False) -> Path:
        """Validate, then write `<table>.parquet` for every table and `metrics.json`.

        The folder is built aside and renamed into place: on any error it is untouched. It
        must be new, empty or an earlier backtest output (`artifacts.claim_output`), and may
        not contain `inputs`.
        """
        self.validate()

        def fill(tmp: Path) -> None:
            for name, frame in self.tables().items():
                write_parquet(frame, tmp / f"{name}.parquet")
            (tmp / "metrics.json").write_text(
                to_json({"metrics": self.metrics, "config": self.config.to_dict()})
            )

        return write_output(out_dir, "backtest", fill, inputs, force)


def _gather_or_null(values: pl.Series, index: np.ndarray, present: np.ndarray) -> pl.Series:
    """`values` at `index`, null where not `present`."""
    return values.gather(_where_or_null(index, present))


def _where_or_null(values: np.ndarray, present: np.ndarray) -> pl.Series:
    """`values`, null where not `present`."""
    series = pl.Series(values)
    return series if present.all() else series.set(pl.Series(~present), None)


def _nan_to_null(values: np.ndarray) -> pl.Series:
    """Float `values` with NaN as null (a field that does not apply)."""
    return pl.Series(values, nan_to_null=True)


def _named(codes: np.ndarray, names: tuple, origin: np.ndarray, by_rule: np.ndarray
           ) -> pl.Series:
    """`names` of `codes`, the risk rule's name (`origin`) where `by_rule`."""
    both = pl.Series([*names, *ORIGIN_NAMES], dtype=pl.String)
    return both.gather(np.where(by_rule, len(names) + origin, codes))
