"""One phase order per timestamp: fill → apply → mark → decide → queue (engine/core/loop.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import BacktestConfig, Strategy, run_strategy
from engine.core.loop import PHASES
from tests.builders import bars

OPEN = [[10.0], [11.0], [12.0], [13.0]]
CLOSE = [[10.5], [11.5], [12.5], [13.5]]


class Recorder(Strategy):
    """Buys 10 shares at bar 0 and records what it sees at every bar."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float, float, float]] = []

    def on_bar(self, ctx) -> None:
        self.seen.append((ctx.bar, float(ctx.positions[0]), ctx.cash, ctx.equity))
        if ctx.bar == 0:
            ctx.order("A0", 10)


def run(fill: str, **config):
    strategy = Recorder()
    result = run_strategy(bars(OPEN, CLOSE), strategy, BacktestConfig(initial_cash=1000.0,
                                                                       fill=fill, **config))
    return strategy.seen, result


def test_the_phases_are_declared_in_order():
    assert PHASES == ("fill", "apply", "mark", "decide", "queue")


def test_next_open_fills_at_the_next_open_and_the_strategy_sees_it_that_bar():
    seen, result = run("next_open")
    fill = result.fills.row(0, named=True)
    assert fill["timestamp"] == result.equity["timestamp"][1]
    assert fill["price"] == 11.0
    assert seen[0][1] == 0.0, "an order placed at bar 0 must not fill at bar 0"
    assert seen[1][1] == 10.0, "the bar-1 open fill is applied before the bar-1 decision"
    assert seen[1][2] == pytest.approx(1000.0 - 110.0)


def test_the_strategy_sees_equity_marked_at_this_close_after_this_bars_fills():
    seen, _ = run("next_open", fees=0.01)
    _, position, cash, equity = seen[1]
    assert equity == pytest.approx(cash + position * CLOSE[1][0], rel=1e-15)
    assert cash == pytest.approx(1000.0 - 110.0 - 1.10)


def test_next_close_fills_at_the_next_close():
    seen, result = run("next_close")
    assert result.fills["price"].to_list() == [11.5]
    assert result.fills["timestamp"][0] == result.equity["timestamp"][1]
    assert seen[1][1] == 10.0


def test_same_close_fills_after_the_decision_and_the_bar_equity_includes_it():
    seen, result = run("same_close", fixed_fee=2.0)
    assert result.fills["price"].to_list() == [10.5]
    assert result.fills["timestamp"][0] == result.equity["timestamp"][0]
    assert seen[0][1] == 0.0
    row = result.equity.row(0, named=True)
    assert row["cash"] == pytest.approx(1000.0 - 105.0 - 2.0)
    assert row["equity"] == pytest.approx(1000.0 - 2.0)


def test_an_order_for_an_asset_without_a_bar_waits_for_its_next_bar():
    open_ = [[10.0, 20.0], [11.0, np.nan], [12.0, 22.0]]
    close = [[10.0, 20.0], [11.0, np.nan], [12.0, 23.0]]

    class BuyB(Strategy):
        def on_bar(self, ctx):
            if ctx.bar == 0:
                ctx.order("A1", 5)

    result = run_strategy(bars(open_, close), BuyB(), BacktestConfig(initial_cash=1000.0))
    assert result.fills["timestamp"].to_list() == [result.equity["timestamp"][2]]
    assert result.fills["price"].to_list() == [22.0]


def test_equity_marks_an_asset_without_a_bar_at_its_last_close():
    open_ = [[10.0, 20.0], [10.0, 20.0], [10.0, np.nan], [10.0, 30.0]]
    close = [[10.0, 20.0], [10.0, 21.0], [10.0, np.nan], [10.0, 30.0]]

    class BuyB(Strategy):
        def on_bar(self, ctx):
            if ctx.bar == 0:
                ctx.order("A1", 1)

    result = run_strategy(bars(open_, close), BuyB(), BacktestConfig(initial_cash=100.0))
    assert result.equity["positions_value"].to_list() == [0.0, 21.0, 21.0, 30.0]
    positions = result.positions.filter(result.positions["timestamp"] == result.equity[
        "timestamp"][2])
    assert positions["market_value"].to_list() == [21.0]


def test_decision_bars_limit_the_callback_to_those_bars():
    class Every2(Strategy):
        def __init__(self):
            self.bars = []

        def decision_bars(self, market):
            return np.arange(market.n_bars) % 2 == 0

        def on_bar(self, ctx):
            self.bars.append(ctx.bar)

    strategy = Every2()
    run_strategy(bars(OPEN, CLOSE), strategy)
    assert strategy.bars == [0, 2]
