"""A finished backtest as tables: fills are the primary record, the rest is derived."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
from engine.results.artifacts import (
    to_json,
    write_output,
    write_parquet,
    write_parquet_batches,
)
from engine.results.columns import (
    NULL_FILLED_AT,
    NULL_GROUP,
    NULL_PARENT,
    NULL_VALID_UNTIL,
    FillColumns,
    fill_columns,
    order_codes,
    order_columns,
)
from engine.results.holdings import holdings
from engine.results.metrics import compute_metrics
from engine.results.trades import trades_table

TABLES = ("fills", "orders", "positions", "equity", "trades")
ORDER_BATCH = 1 << 16  # orders a batch of the orders table holds when it is written
WHOLE_ORDERS = 1 << 19  # an orders table up to this many orders is written in one piece


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
        return fill_columns(sim.ledger.view(), self._order_codes, self._times)

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
    def _order_codes(self) -> np.ndarray:
        """The one-byte codes the fills and metrics read of every order (type, origin,
        status; indexed by id): kept apart so that the order records can be released once
        the orders table is written."""
        return order_codes(self._sim.book.view())

    @cached_property
    def orders(self) -> pl.DataFrame:
        return self._orders_of(slice(None))

    def order_batches(self, size: int | None = None) -> Iterator[pl.DataFrame]:
        """The orders table `size` (default `ORDER_BATCH`) orders at a time (`orders`
        sliced, at least one frame): what `save` writes, so a run of millions of orders
        never holds the table whole."""
        n, size = self._sim.book.n_orders, size or ORDER_BATCH
        for start in range(0, max(n, 1), size):
            yield self._orders_of(slice(start, min(start + size, n)))

    def _orders_of(self, ids: slice) -> pl.DataFrame:
        """The rows of the orders table for the orders `ids` (a slice of ids)."""
        market = self._sim.market
        records = self._sim.book.view()[ids]
        orders = order_columns(records, self._times)
        first = ids.start or 0
        reason = _texts(REASON_TEXTS, orders.reason)
        superseded = np.flatnonzero(orders.reason == Reason.superseded)
        if len(superseded):
            merged = orders.status[superseded] == STATUS_NAMES.index("merged")
            by = records["superseded_by"][superseded]
            text = pl.select(pl.format(
                "{} order {}",
                pl.Series(np.where(merged, "merged into", "replaced by")),
                pl.Series(by.astype(np.int64)),
            )).to_series()
            reason = reason.scatter(superseded, text)
        stamps, nulls = market.timestamps.dtype, orders.nulls
        return pl.DataFrame(
            {
                "order_id": np.arange(first, first + len(orders.asset), dtype=np.int64),
                "created": _stamps(orders.created, stamps),
                "asset": _texts(market.assets, orders.asset),
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
        """The metrics; the orders are tallied by status from their one-byte codes, so that
        a run of millions of orders never builds the orders table to count them."""
        tally = np.bincount(self._order_codes["status"], minlength=len(STATUS_NAMES))
        return compute_metrics(
            self.equity, self.fills, dict(zip(STATUS_NAMES, tally.tolist(), strict=True)),
            self.trades, initial_cash=self.config.initial_cash,
            periods_per_year=self.config.periods_per_year,
        )

    @property
    def final_equity(self) -> float:
        sim = self._sim
        return float(sim.cash[-1] + sim.positions_value[-1])

    def tables(self) -> dict[str, pl.DataFrame]:
        """Every table by name (see `TABLES`)."""
        return {name: getattr(self, name) for name in TABLES}

    def validate(self, names: Iterable[str] = TABLES) -> BacktestResult:
        """Check the tables `names` against their pandera models in `schemas.backtest`
        (`_validate`)."""
        for name in names:
            _validate(name, getattr(self, name))
        return self

    def save(self, out_dir: str | Path, inputs: Iterable[str | Path | None] = (),
             force: bool = False, release: bool = False) -> Path:
        """Validate, then write `<table>.parquet` for every table and `metrics.json`.

        The orders table is built, checked and written first: in one piece by polars when
        it is held already or has at most `WHOLE_ORDERS` orders, else a batch of orders at
        a time (`order_batches`, a row group each), so that a run of millions of orders
        never holds it whole. The folder is built aside and renamed into place: on any error it is
        untouched. It must be new, empty or an earlier backtest output
        (`artifacts.claim_output`), and may not contain `inputs`.
        `release`: give the order records back to the system once the orders table is
        written (for a caller done with the orders, the command line); this result can then
        no longer build its orders table.
        """
        whole = "orders" in self.__dict__
        others = [name for name in TABLES if name != "orders"]

        def fill(tmp: Path) -> None:
            path = tmp / "orders.parquet"
            if whole:  # already held: checked and written as it is
                write_parquet(_validate("orders", self.orders), path)
            elif self._sim.book.n_orders <= WHOLE_ORDERS:  # built whole, not kept
                write_parquet(_validate("orders", self._orders_of(slice(None))), path)
            else:  # first, while no other table is held
                write_parquet_batches((_validate("orders", batch)
                                       for batch in self.order_batches()), path)
            if release:
                self._order_codes  # noqa: B018 (kept before the records go)
                self._sim.book.release()
            self.validate(others)
            for name in others:
                write_parquet(getattr(self, name), tmp / f"{name}.parquet")
            (tmp / "metrics.json").write_text(
                to_json({"metrics": self.metrics, "config": self.config.to_dict()})
            )

        return write_output(out_dir, "backtest", fill, inputs, force)


def _validate(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` checked against the pandera model of the table `name`.

    A table that passes the model's declarations as read by `schemas.declared` (with
    polars, without importing pandera and pandas) is done; any other goes through pandera
    itself, which raises with the failing columns and rows."""
    from schemas.declared import conforms

    model = name.capitalize()
    if conforms(frame, "schemas.backtest", model):
        return frame
    from schemas import backtest as schemas

    return getattr(schemas, model).validate(frame, lazy=True)


def _texts(names: pl.Series, codes: np.ndarray) -> pl.Series:
    """`names` (text, None for null) at `codes` (uint32: gathered as they are)."""
    return names.gather(pl.Series(codes))


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
