"""A finished backtest as tables: fills are the primary record, the rest is derived."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.core.loop import Simulation
from engine.core.records import (
    KIND_NAMES,
    ORIGIN_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    TYPE_NAMES,
    Reason,
)
from engine.results.artifacts import to_json, write_output, write_parquet
from engine.results.columns import (
    NULL_FILLED_AT,
    NULL_GROUP,
    NULL_PARENT,
    NULL_VALID_UNTIL,
    FillColumns,
    fill_columns,
    order_columns,
)
from engine.results.holdings import holdings
from engine.results.metrics import compute_metrics
from engine.results.trades import trades_table

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
    def _times(self) -> np.ndarray:
        """Each bar's timestamp in its physical units (what the passes write)."""
        return self._sim.market.timestamps.to_physical().to_numpy()

    @cached_property
    def _fill_columns(self) -> FillColumns:
        """The fills' columns, read from the journal in one pass."""
        sim = self._sim
        return fill_columns(sim.ledger.view(), sim.book.view(), self._times)

    @cached_property
    def fills(self) -> pl.DataFrame:
        market = self._sim.market
        fills = self._fill_columns
        return pl.DataFrame(
            {
                "timestamp": _stamps(fills.time, market.timestamps.dtype),
                "asset": market.assets.gather(fills.asset),
                "quantity": fills.quantity,
                "price": fills.price,
                "fee": fills.fee,
                "order_id": fills.order_id,
                "trigger": _texts(TRIGGER_TEXTS, fills.trigger),
            }
        )

    @cached_property
    def orders(self) -> pl.DataFrame:
        market = self._sim.market
        orders = order_columns(self._sim.book.view(), self._times)
        reason = _texts(REASON_TEXTS, orders.reason)
        superseded = np.flatnonzero(orders.reason == Reason.superseded)
        if len(superseded):
            merged = orders.status[superseded] == STATUS_NAMES.index("merged")
            ids = self._sim.book.view()["superseded_by"][superseded]
            text = pl.select(pl.format(
                "{} order {}",
                pl.Series(np.where(merged, "merged into", "replaced by")),
                pl.Series(ids.astype(np.int64)),
            )).to_series()
            reason = reason.scatter(superseded, text)
        stamps, nulls = market.timestamps.dtype, orders.nulls
        return pl.DataFrame(
            {
                "order_id": np.arange(len(orders.asset), dtype=np.int64),
                "created": _stamps(orders.created, stamps),
                "asset": market.assets.gather(orders.asset),
                "kind": _texts(KIND_TEXTS, orders.kind),
                "amount": orders.amount,
                "status": _texts(STATUS_TEXTS, orders.status),
                "reason": reason,
                "filled_at": _stamps(orders.filled_at, stamps, nulls[NULL_FILLED_AT]),
                "filled_quantity": orders.filled_quantity,
                "type": _texts(TYPE_TEXTS, orders.type),
                "limit_price": _nan_to_null(orders.limit_price),
                "stop_price": _nan_to_null(orders.stop_price),
                "trail": _nan_to_null(orders.trail),
                "valid_until": _stamps(orders.valid_until, stamps, nulls[NULL_VALID_UNTIL]),
                "parent": _null_where(pl.Series(orders.parent), nulls[NULL_PARENT]),
                "group": _null_where(pl.Series(orders.group), nulls[NULL_GROUP]),
                "origin": _texts(ORIGIN_TEXTS, orders.origin),
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
        market, fills = self._sim.market, self._fill_columns
        times, assets, quantity, value = holdings(fills.bar, fills.asset, fills.quantity,
                                                  self._times, market.last_close)
        return pl.DataFrame(
            {
                "timestamp": _stamps(times, market.timestamps.dtype),
                "asset": market.assets.gather(assets),
                "quantity": quantity,
                "market_value": value,
            }
        )

    @cached_property
    def trades(self) -> pl.DataFrame:
        market = self._sim.market
        fills = self._fill_columns
        times = market.timestamps.cast(pl.Datetime("us")).to_physical().to_numpy()
        return trades_table(fills.asset, market.assets, times[fills.bar], fills.quantity,
                            fills.price, fills.fee, np.asarray(market.last_close[-1]))

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
        """Check every table against its pandera model in `schemas.backtest` (loaded here:
        a run that only reads its tables never imports pandera)."""
        from schemas import backtest as schemas

        for name in TABLES:
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


def _texts(names: pl.Series, codes: np.ndarray) -> pl.Series:
    """`names` (text, None for null) at `codes`."""
    return names.gather(codes)


def _stamps(times: np.ndarray, dtype: pl.DataType, null: np.ndarray | None = None
            ) -> pl.Series:
    """Physical `times` as a column of `dtype` (without a copy), null where `null`."""
    return _null_where(pl.Series(times).cast(dtype), null)


def _null_where(values: pl.Series, null: np.ndarray | None) -> pl.Series:
    """`values`, null where `null`."""
    return values if null is None or not null.any() else values.set(pl.Series(null), None)


def _nan_to_null(values: np.ndarray) -> pl.Series:
    """Float `values` with NaN as null (a field that does not apply)."""
    return pl.Series(values, nan_to_null=True)


def _names(*words: tuple) -> pl.Series:
    """Text columns' names by code: `words` one after the other (None reads as null)."""
    return pl.Series([word for group in words for word in group], dtype=pl.String)


KIND_TEXTS, STATUS_TEXTS, TYPE_TEXTS, ORIGIN_TEXTS = (
    _names(words) for words in (KIND_NAMES, STATUS_NAMES, TYPE_NAMES, ORIGIN_NAMES))
REASON_TEXTS = _names(REASON_NAMES, ORIGIN_NAMES)  # a rule's exit: the rule's name
TRIGGER_TEXTS = _names(TYPE_NAMES, ORIGIN_NAMES)  # a rule's fill: the rule's name
