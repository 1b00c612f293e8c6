"""Sealed state: every array a strategy or a reader is handed is read-only, down to its base.

Each check tries to write through the array, through `np.asarray` of it, by setting its
writeable flag, and through every `.base` under it (an ndarray base must refuse the same;
the object at the bottom must be read-only memory or expose no buffer at all).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine import BacktestConfig, Strategy, market_of, run_backtest, run_strategy
from engine.core.book import OrderBook
from engine.core.ledger import Ledger
from engine.core.loop import simulate
from engine.core.records import OrderStatus, OrderType
from engine.data.loading import load_prices
from engine.data.market import Market
from tests.builders import bars, random_universe

OPEN = [[10.0, 40.0], [20.0, 50.0], [25.0, 40.0], [20.0, 50.0]]
CLOSE = [[12.0, 45.0], [22.0, 44.0], [24.0, 48.0], [20.0, 50.0]]
CONTEXT_ARRAYS = ("open", "high", "low", "close", "volume", "last_close", "positions",
                  "has_open_order", "pending", "open_orders")


def assert_sealed(array: np.ndarray) -> None:
    """No write through `array`, `np.asarray(array)`, its flags or any base under it."""
    for view in (array, np.asarray(array)):
        with pytest.raises(ValueError):
            view[...] = 0
        with pytest.raises(ValueError):
            view.flags.writeable = True
    base = array.base
    depth = 0
    while isinstance(base, np.ndarray):
        with pytest.raises(ValueError):
            base.flags.writeable = True
        with pytest.raises(ValueError):
            base[...] = 0
        base, depth = base.base, depth + 1
        assert depth < 10
    if base is not None:
        try:
            buffer = memoryview(base)
        except TypeError:
            return  # no buffer at all (polars' own memory): nothing to write through
        assert buffer.readonly, f"{type(base).__name__} under the array is writable"


def test_the_check_catches_a_writable_base():
    owner = np.zeros(4)
    view = owner[:2]
    view.flags.writeable = False
    with pytest.raises(pytest.fail.Exception):
        assert_sealed(view)


class Probe(Strategy):
    """Buys at bar 0, then at bar 1 checks every array the context exposes."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def on_bar(self, ctx) -> None:
        if ctx.bar == 0:
            ctx.order(["A0", "A1"], [2.0, 1.0])
            ctx.order("A0", 1.0)
            return
        if ctx.bar == 1:
            ctx.order_target("A1", 3.0)
            ctx.order("A0", -1.0, stop=5.0)
            ctx.order("A1", 1.0, limit=30.0, oco="entry")
            for name in CONTEXT_ARRAYS:
                assert_sealed(getattr(ctx, name))
                self.checked.append(name)


def test_every_array_the_context_exposes_is_sealed():
    probe = Probe()
    run_strategy(bars(OPEN, CLOSE), probe, BacktestConfig(initial_cash=1000.0))
    assert probe.checked == list(CONTEXT_ARRAYS)


def test_halving_the_close_raises_and_leaves_a_same_close_fill_alone():
    """`px = ctx.close; px /= 2` once corrupted a same_close fill; now it cannot happen."""

    class Halve(Strategy):
        def on_bar(self, ctx):
            if ctx.bar == 0:
                ctx.order("A0", 10)
                px = ctx.close
                with pytest.raises(ValueError):
                    px /= 2

    result = run_strategy(bars(OPEN, CLOSE), Halve(),
                          BacktestConfig(initial_cash=1000.0, fill="same_close"))
    assert result.fills["price"].to_list() == [12.0]


@pytest.mark.parametrize("missing", [0.0, 0.1], ids=["complete", "with_gaps"])
def test_market_arrays_are_sealed(missing):
    prices, _, _ = random_universe(4, 12, seed=2, missing=missing)
    market = Market.from_bars(load_prices(prices))
    for name in ("open", "close", "high", "low", "volume", "last_close", "last_open",
                 "has_bar"):
        assert_sealed(getattr(market, name))
        assert_sealed(getattr(market, name)[3])


def test_ledger_and_book_hand_out_sealed_copies():
    ledger = Ledger(3, 100.0)
    ledger.apply_fills(0, np.array([1]), np.array([2.0]), np.array([10.0]), np.array([0.5]))
    book = OrderBook(3)
    book.submit(0, 1, np.array([0, 2]), 0, np.array([1.0, 2.0]))
    book.place(0, 1, OrderType.limit, 5.0, limit=9.0)
    for array in (ledger.positions, ledger.fills, book.records, book.record("status"),
                  book.open_ids, book.slots, book.resting_ids, book.open_orders()):
        assert_sealed(array)
    assert book.open_orders()["order_id"].tolist() == [0, 1, 2]


def test_an_order_is_open_in_exactly_one_way():
    """The slot's order id marks an open order; its record says `open` until it closes."""

    class Churn(Strategy):
        def on_bar(self, ctx):
            ctx.order_target_percent(["A0", "A1"], [0.3, 0.3])
            if ctx.bar % 2:
                ctx.order("A0", 1.0)

    prices = bars([[10.0, np.nan]] * 3 + [[11.0, 20.0]], [[10.0, np.nan]] * 3 + [[11.0, 20.0]])
    market = Market.from_bars(load_prices(prices))
    book = simulate(market, Churn(), BacktestConfig(initial_cash=1000.0)).book
    open_in_records = np.flatnonzero(book.record("status") == OrderStatus.open)
    open_in_slots = np.sort(book.open_ids[book.open_ids >= 0])
    assert open_in_records.tolist() == open_in_slots.tolist() == [8, 9]


def test_one_market_serves_many_runs_unchanged():
    """A `Market` built once is passed to several runs (a sweep): each run gives what the
    prices frame gives, and the market's arrays come out as they went in."""
    prices, _, _ = random_universe(6, 60, seed=4, missing=0.1)
    market = market_of(prices)
    before = {name: getattr(market, name).copy() for name in ("open", "close", "last_close")}
    stamps = market.timestamps.gather_every(10).to_list()
    weights = pl.DataFrame({"timestamp": stamps * 2,
                            "asset": [market.assets[0]] * len(stamps)
                            + [market.assets[1]] * len(stamps),
                            "weight": 0.4}).sort("timestamp", "asset")
    for config in (BacktestConfig(), BacktestConfig(fees=0.001, stop_loss=0.02)):
        reused = run_backtest(market, weights, config)
        fresh = run_backtest(prices, weights, config)
        assert reused.fills.height > 0
        assert reused.fills.equals(fresh.fills) and reused.orders.equals(fresh.orders)
    for name, values in before.items():
        np.testing.assert_array_equal(getattr(market, name), values)
