"""A finished backtest as tables: fills are the primary record, the rest is derived."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.book import KIND_NAMES, REASON_NAMES, STATUS_NAMES, SUPERSEDED
from engine.core.config import BacktestConfig
from engine.core.loop import Simulation
from engine.results.artifacts import replace_directory, to_json, write_parquet
from engine.results.metrics import compute_metrics
from engine.results.trades import build_trades
from schemas import backtest as schemas

TABLES = ("fills", "orders", "positions", "equity", "trades")
SCHEMAS = {
    "fills": schemas.Fills,
    "orders": schemas.Orders,
    "positions": schemas.Positions,
    "equity": schemas.Equity,
    "trades": schemas.Trades,
}


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
    def fills(self) -> pl.DataFrame:
        sim = self._sim
        market = sim.market
        return pl.DataFrame(
            {
                "timestamp": market.timestamps.gather(sim.fill_bar),
                "asset": market.assets.gather(sim.fill_asset),
                "quantity": sim.fill_quantity,
                "price": sim.fill_price,
                "fee": sim.fill_fee,
                "order_id": sim.fill_order.astype(np.int64),
            }
        )

    @cached_property
    def orders(self) -> pl.DataFrame:
        book = self._sim.book
        market = self._sim.market
        filled_bar = book.record("filled_bar")
        status = pl.Series(STATUS_NAMES).gather(book.record("status"))
        superseded = pl.format(
            "{} order {}",
            pl.when(status == "merged").then(pl.lit("merged into")).otherwise(
                pl.lit("replaced by")),
            pl.Series(book.record("superseded_by")),
        )
        reason_code = book.record("reason")
        return pl.DataFrame(
            {
                "order_id": np.arange(book.n_orders, dtype=np.int64),
                "created": market.timestamps.gather(book.record("created_bar")),
                "asset": market.assets.gather(book.record("asset")),
                "kind": pl.Series(KIND_NAMES).gather(book.record("kind")),
                "amount": book.record("amount"),
                "status": status,
                "reason": pl.Series(REASON_NAMES, dtype=pl.String).gather(reason_code),
                "filled_at": market.timestamps.gather(np.maximum(filled_bar, 0)),
                "filled_quantity": book.record("filled_quantity"),
            }
        ).with_columns(
            pl.when(pl.Series(reason_code == SUPERSEDED)).then(superseded)
            .otherwise(pl.col("reason")).alias("reason"),
            pl.when(pl.Series(filled_bar >= 0)).then(pl.col("filled_at")).alias("filled_at"),
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
        sim = self._sim
        market = sim.market
        bars, assets, quantity = sim.holding_bar, sim.holding_asset, sim.holding_quantity
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
        last = pl.DataFrame({"asset": market.assets, "close": market.last_close[-1]})
        return build_trades(self.fills, last.drop_nulls().drop_nans(), market.timestamps[-1])

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
        """Check every table against its pandera model in `schemas.backtest`."""
        for name, model in SCHEMAS.items():
            model.validate(getattr(self, name), lazy=True)
        return self

    def save(self, out_dir: str | Path) -> Path:
        """Validate, then write `<table>.parquet` for every table and `metrics.json`.

        The folder is built aside and renamed into place: on any error it is untouched.
        """
        self.validate()

        def fill(tmp: Path) -> None:
            for name, frame in self.tables().items():
                write_parquet(frame, tmp / f"{name}.parquet")
            (tmp / "metrics.json").write_text(
                to_json({"metrics": self.metrics, "config": self.config.to_dict()})
            )

        return replace_directory(out_dir, fill)
