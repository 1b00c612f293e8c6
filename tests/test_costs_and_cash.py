"""Costs, share rounding and cash policies, computed by hand on one or two assets."""

from __future__ import annotations

import pytest

from engine import BacktestConfig, Strategy, run_strategy
from tests.builders import bars

OPEN = [[10.0, 40.0], [20.0, 50.0], [25.0, 40.0]]
CLOSE = [[12.0, 45.0], [22.0, 44.0], [24.0, 48.0]]


class Script(Strategy):
    def __init__(self, actions):
        self.actions = actions

    def on_bar(self, ctx):
        if ctx.bar in self.actions:
            self.actions[ctx.bar](ctx)


def run(actions, **config):
    config = BacktestConfig(**{"initial_cash": 1000.0, **config})
    return run_strategy(bars(OPEN, CLOSE), Script(actions), config)


def only_fill(result):
    assert result.fills.height == 1
    return result.fills.row(0, named=True)


def test_percentage_fee_is_charged_on_the_traded_value():
    fill = only_fill(run({0: lambda c: c.order("A0", 10)}, fees=0.01))
    assert fill["fee"] == pytest.approx(10 * 20.0 * 0.01, rel=1e-15)


def test_per_share_commission_has_a_minimum_per_order():
    small = only_fill(run({0: lambda c: c.order("A0", 10)}, per_share=0.05, min_fee=1.0))
    large = only_fill(run({0: lambda c: c.order("A0", 40)}, per_share=0.05, min_fee=1.0))
    assert small["fee"] == 1.0
    assert large["fee"] == pytest.approx(2.0, rel=1e-15)


def test_fixed_fee_is_charged_per_filled_order():
    result = run({0: lambda c: c.order(["A0", "A1"], [1, 1])}, fixed_fee=3.0)
    assert result.fills["fee"].to_list() == [3.0, 3.0]
    assert result.equity["cash"][1] == 1000.0 - 20.0 - 50.0 - 6.0


def test_slippage_moves_the_price_against_the_trader():
    result = run({0: lambda c: c.order("A0", 10), 1: lambda c: c.order("A0", -10)},
                 slippage=0.01)
    assert result.fills["price"].to_list() == [pytest.approx(20.2), pytest.approx(25 * 0.99)]


def test_integer_shares_floor_the_order():
    fill = only_fill(run({0: lambda c: c.order_value("A0", 99.0)}, shares="integer"))
    assert fill["quantity"] == 4.0


def test_shrink_buys_what_the_cash_pays_for_and_leaves_exactly_zero():
    result = run({0: lambda c: c.order("A1", 100)}, fees=0.001, fixed_fee=1.0)
    fill = only_fill(result)
    assert fill["quantity"] == pytest.approx((1000.0 - 1.0) / 1.001 / 50.0, rel=1e-15)
    assert result.equity["cash"][1] == 0.0
    assert result.orders["reason"].to_list() == ["shrunk_to_cash"]


def test_shrink_with_per_share_commission_fits_the_cash():
    result = run({0: lambda c: c.order("A1", 100)}, per_share=0.5, min_fee=1.0)
    fill = only_fill(result)
    assert fill["quantity"] * 50.0 + fill["fee"] == pytest.approx(1000.0, rel=1e-12)
    assert fill["quantity"] == pytest.approx(1000.0 / 50.5, rel=1e-12)


def test_shrink_in_integer_mode_floors_and_keeps_the_change():
    result = run({0: lambda c: c.order("A1", 100)}, shares="integer")
    assert only_fill(result)["quantity"] == 20.0
    result = run({0: lambda c: c.order("A1", 100)}, shares="integer", fees=0.01)
    assert only_fill(result)["quantity"] == 19.0
    assert result.equity["cash"][1] == pytest.approx(1000.0 - 19 * 50.0 * 1.01)


def test_reject_policy_records_the_reason_and_trades_nothing():
    result = run({0: lambda c: c.order("A1", 100)}, cash_policy="reject")
    assert result.fills.height == 0
    row = result.orders.row(0, named=True)
    assert (row["status"], row["reason"]) == ("rejected", "insufficient_cash")


def test_allow_negative_lets_cash_go_below_zero():
    result = run({0: lambda c: c.order("A1", 100)}, cash_policy="allow_negative")
    assert only_fill(result)["quantity"] == 100.0
    assert result.equity["cash"][1] == 1000.0 - 5000.0


def test_sells_are_executed_before_buys_so_their_cash_is_available():
    result = run({
        0: lambda c: c.order("A0", 45),
        1: lambda c: c.rebalance({"A1": 0.99}),
    })
    second = result.fills.filter(result.fills["timestamp"] == result.equity["timestamp"][2])
    assert second["asset"].to_list() == ["A0", "A1"]
    assert second["quantity"][0] == -45.0
    assert result.orders["status"].to_list() == ["filled", "filled", "filled"]


def test_a_sell_whose_fee_exceeds_its_proceeds_is_rejected():
    result = run({0: lambda c: c.order("A0", 1), 1: lambda c: c.order("A0", -1)},
                 fixed_fee=30.0, cash_policy="allow_negative")
    assert result.orders["status"].to_list() == ["filled", "rejected"]
    assert result.orders["reason"][1] == "fee_exceeds_proceeds"


def test_cash_left_as_float_dust_is_zero_and_the_next_buy_is_rejected():
    """A buy that uses the cash up to float noise leaves exactly 0, not a dust-sized buy."""
    prices = bars([[1.0, 0.9, 1.0]] * 2, [[1.0, 0.9, 1.0]] * 2)

    class Overweight(Strategy):
        def on_bar(self, ctx):
            if ctx.bar == 0:
                ctx.rebalance({"A0": 0.5, "A1": 0.5, "A2": 0.6})

    result = run_strategy(prices, Overweight(), BacktestConfig(initial_cash=1e6))
    assert result.fills["asset"].to_list() == ["A0", "A1"]
    assert result.orders.filter(result.orders["asset"] == "A2")["reason"].to_list() == [
        "insufficient_cash"]
    assert result.equity["cash"][1] == 0.0


def rebalance_75_75(**config):
    """Targets 0.75 and 0.75 decided at bar 0, filled at bar 1's opens (20 and 50)."""
    return run({0: lambda c: c.rebalance({"A0": 0.75, "A1": 0.75})}, **config)


def test_without_leverage_the_second_buy_shrinks_to_the_cash_left():
    result = rebalance_75_75()
    assert result.fills["quantity"].to_list() == [750.0 / 20.0, 250.0 / 50.0]
    assert result.equity["cash"][1] == 0.0


def test_leverage_fills_targets_beyond_the_cash_up_to_the_buying_power():
    result = rebalance_75_75(allow_leverage=True)
    assert result.fills["quantity"].to_list() == [750.0 / 20.0, 750.0 / 50.0]
    assert result.equity["cash"][1] == 1000.0 - 1500.0
    assert result.orders["reason"].to_list() == [None, None]


def test_shrink_stops_at_cash_plus_max_leverage_minus_one_times_the_book_value():
    result = rebalance_75_75(allow_leverage=True, max_leverage=1.2)
    power = 1000.0 + 0.2 * 1000.0
    assert result.fills["quantity"].to_list() == [750.0 / 20.0,
                                                  pytest.approx((power - 750.0) / 50.0)]
    assert result.equity["cash"][1] == pytest.approx(-0.2 * 1000.0)
    assert result.orders["reason"].to_list() == [None, "shrunk_to_cash"]


def test_reject_refuses_a_buy_beyond_the_buying_power():
    result = rebalance_75_75(allow_leverage=True, max_leverage=1.2, cash_policy="reject")
    assert result.fills["asset"].to_list() == ["A0"]
    assert result.orders["reason"].to_list() == [None, "insufficient_cash"]
    fits = rebalance_75_75(allow_leverage=True, max_leverage=1.5, cash_policy="reject")
    assert fits.fills["quantity"].to_list() == [750.0 / 20.0, 750.0 / 50.0]


def test_allow_negative_ignores_max_leverage():
    result = run({0: lambda c: c.order("A1", 100)}, cash_policy="allow_negative",
                 allow_leverage=True, max_leverage=1.1)
    assert only_fill(result)["quantity"] == 100.0


def test_max_leverage_below_one_and_leverage_under_backtrader_are_refused():
    with pytest.raises(ValueError, match="max_leverage"):
        BacktestConfig(max_leverage=0.5)
    with pytest.raises(ValueError, match="allow_leverage"):
        BacktestConfig.for_profile("backtrader", allow_leverage=True)
