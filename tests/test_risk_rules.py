"""Risk rules, one hand-computed example each: the exits a position gets (stop_loss,
take_profit, trailing_stop, max_bars) are visible orders, never checked on the entry bar,
resized with the position and cancelled when it is flat; the portfolio rules (max_positions,
max_gross, max_weight, halt_drawdown) reject an order when it is placed, with the rule as
its reason, and the halt still lets exits through."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine import BacktestConfig, Strategy, run_backtest, run_orders, run_strategy
from engine.reference import run_reference
from tests.builders import bars, weights
from tests.test_resting_orders import FLAT, T0, fills, ohlc


def hold(rows, **settings):
    """All in A0 at bar 0's close (fills at bar 1's open), never decided again."""
    config = BacktestConfig(**{"initial_cash": 100_000.0, **settings})
    return run_backtest(ohlc(rows), weights({0: {"A0": 1.0}}), config).validate()


ENTRY = (100, 101, 90, 100)  # bar 1: the entry at 100, then a low the exits must not see


def test_stop_loss_exits_at_its_level_from_the_bar_after_the_entry():
    result = hold([FLAT, ENTRY, (99, 100, 94, 96)], stop_loss=0.05)
    assert fills(result) == [(1, 1000.0, 100.0, "market"), (2, -1000.0, 95.0, "stop_loss")]
    exit_order = result.orders.filter(pl.col("origin") == "stop_loss").row(0, named=True)
    assert (exit_order["type"], exit_order["stop_price"], exit_order["status"],
            exit_order["reason"]) == ("stop", 95.0, "filled", "stop_loss")


def test_take_profit_exits_at_its_level_and_cancels_the_stop_loss():
    result = hold([FLAT, ENTRY, (104, 111, 103, 108)], stop_loss=0.05, take_profit=0.10)
    assert fills(result)[1:] == [(2, -1000.0, pytest.approx(110.0, rel=1e-15), "take_profit")]
    rules = result.orders.filter(pl.col("origin") != "user")
    assert rules.select("origin", "status", "reason").rows() == [
        ("stop_loss", "cancelled", "oco"), ("take_profit", "filled", "take_profit")]
    assert rules["group"].n_unique() == 1


def test_trailing_stop_never_uses_the_entry_bar_s_high():
    # base 100 (the fill); bar 1's high 120 is the entry bar's: ignored. Bar 2 (high 110)
    # is checked against 90, then the peak moves to 110 (level 99); bar 3's low 98 hits it.
    rows = [FLAT, (100, 120, 100, 100), (105, 110, 99, 108), (104, 105, 98, 100)]
    result = hold(rows, trailing_stop=0.10)
    assert fills(result)[1:] == [(3, -1000.0, 99.0, "trailing_stop")]


def test_the_stop_base_is_the_entry_bar_s_close_under_vectorbt():
    rows = [FLAT, (100, 105, 100, 104), (100, 101, 98, 100)]
    assert fills(hold(rows, stop_loss=0.05))[1:] == []
    result = hold(rows, stop_loss=0.05, stop_base="close")
    assert fills(result)[1:] == [(2, -1000.0, pytest.approx(98.8, rel=1e-12), "stop_loss")]
    vectorbt = hold(rows, stop_loss=0.05, profile="vectorbt")
    assert fills(vectorbt)[1:] == fills(result)[1:]


def test_time_exit_holds_the_position_n_bars_and_sells_at_the_open_of_entry_plus_n():
    # entered at bar 1's open, held through bars 1 and 2, sold at bar 3's open
    result = hold([FLAT, FLAT, FLAT, (101, 102, 100, 101), FLAT], max_bars=2)
    assert fills(result) == [(1, 1000.0, 100.0, "market"), (3, -1000.0, 101.0, "time_exit")]


def test_time_exit_under_close_fills_sells_at_the_close_of_entry_plus_n():
    rows = [FLAT, FLAT, FLAT, (101, 102, 100, 101.5), FLAT]
    result = hold(rows, max_bars=2, fill="next_close")
    assert fills(result) == [(1, 1000.0, 100.0, "market"), (3, -1000.0, 101.5, "time_exit")]


def test_rule_exits_are_resized_with_the_position_and_cancelled_when_flat():
    decisions = weights({0: {"A0": 1.0}, 2: {"A0": 0.5}, 4: {"A0": 0.0}})
    config = BacktestConfig(initial_cash=100_000.0, stop_loss=0.5)
    result = run_backtest(ohlc([FLAT] * 6), decisions, config).validate()
    (stop,) = result.orders.filter(pl.col("origin") == "stop_loss").rows(named=True)
    assert stop["amount"] == -500.0, "resized to the position after bar 3's sell"
    assert (stop["status"], stop["reason"]) == ("cancelled", "position_closed")


def two_assets(closes):
    return bars(closes, closes)


def portfolio(decisions, closes=None, **settings):
    closes = closes or [[100.0, 50.0]] * 4
    config = BacktestConfig(initial_cash=100_000.0, **settings)
    return run_backtest(two_assets(closes), weights(decisions), config).validate()


def rejected(result) -> list[tuple[str, str]]:
    return result.orders.filter(pl.col("status") == "rejected").select("asset", "reason").rows()


def test_max_positions_rejects_an_order_opening_one_more_position():
    result = portfolio({0: {"A0": 0.4, "A1": 0.4}}, max_positions=1)
    assert rejected(result) == [("A1", "max_positions")]
    assert result.fills["asset"].to_list() == ["A0"]


def test_max_weight_rejects_an_asset_above_its_share_of_equity():
    result = portfolio({0: {"A0": 0.3, "A1": 0.5}}, max_weight=0.3)
    assert rejected(result) == [("A1", "max_weight")], "0.3 exactly is allowed"


def test_portfolio_rules_count_open_entries_and_earlier_orders_of_the_decision():
    from engine import run_orders
    from tests.test_resting_orders import table

    # at 100: the open limit entry plans 200 shares (20% of 100,000); the market row's 150
    # more would make 35% (rejected); the sell then plans 100, so the last 150 fit (25%)
    orders = table(type=["limit", "market", "market", "market"],
                   quantity=[200.0, 150.0, -100.0, 150.0],
                   limit_price=[95.0, None, None, None])
    config = BacktestConfig(initial_cash=100_000.0, max_weight=0.3)
    result = run_orders(ohlc([FLAT, FLAT]), orders, config).validate()
    assert rejected(result) == [("A0", "max_weight")]
    assert result.orders["status"].to_list()[:2] == ["open", "rejected"]


def test_max_gross_rejects_the_order_that_takes_exposure_past_it():
    result = portfolio({0: {"A0": 0.3, "A1": 0.3}}, max_gross=0.5)
    assert rejected(result) == [("A1", "max_gross")]


def test_halt_drawdown_blocks_entries_and_lets_exits_through():
    closes = [[100.0, 50.0], [100.0, 50.0], [80.0, 50.0], [80.0, 50.0], [80.0, 50.0]]
    decisions = {0: {"A0": 1.0}, 2: {"A1": 0.5}}
    result = portfolio(decisions, closes, halt_drawdown=0.1)
    assert rejected(result) == [("A1", "halt_drawdown")], "equity is 20% below its peak"
    assert fills(result)[-1][:2] == (3, -1000.0), "the exit of A0 still fills"
    calm = portfolio(decisions, closes, halt_drawdown=0.25)
    assert rejected(calm) == []


def test_the_portfolio_rules_check_strategy_orders_too():
    class Buy(Strategy):
        def on_bar(self, ctx):
            if ctx.bar == 0:
                ctx.order_target_percent("A0", 0.2)
                ctx.order("A1", 1000, limit=50.0)  # 50,000 of 100,000: above 0.3

    config = BacktestConfig(initial_cash=100_000.0, max_weight=0.3)
    result = run_strategy(two_assets([[100.0, 50.0]] * 3), Buy(), config).validate()
    assert rejected(result) == [("A1", "max_weight")]
    assert result.orders["type"].to_list() == ["market", "limit"]


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("stop_loss", 1.5, "stop_loss is a fraction"), ("take_profit", -0.1, "take_profit must"),
    ("max_bars", 2.5, "max_bars must be a whole number"),
    ("max_positions", -1, "max_positions must"), ("halt_drawdown", 1.0, "halt_drawdown is"),
    ("intrabar_path", "random", "intrabar_path must be one of"),
    ("stop_base", "open", "stop_base must be one of"),
    ("trail_source", "low", "trail_source must be one of"),
])
def test_rule_settings_are_validated(setting, value, message):
    with pytest.raises(ValueError, match=message):
        BacktestConfig(**{setting: value})


def test_profiles_give_the_intrabar_defaults():
    vectorbt = BacktestConfig.for_profile("vectorbt").kernel_settings()
    backtrader = BacktestConfig.for_profile("backtrader").kernel_settings()
    default = BacktestConfig().kernel_settings()
    assert (default.stop_first, default.stop_base_close, default.trail_close) == (
        False, False, False)
    assert (vectorbt.stop_first, vectorbt.stop_base_close) == (True, True)
    assert (backtrader.stop_first, backtrader.trail_close) == (True, True)
    assert not BacktestConfig.for_profile("vectorbt", stop_first=False).kernel_settings(
    ).stop_first


def test_the_time_exit_waits_for_the_entry_bar_of_a_later_entry():
    late = weights({2: {"A0": 1.0}})
    config = BacktestConfig(initial_cash=100_000.0, max_bars=1)
    result = run_backtest(ohlc([FLAT] * 6), late, config).validate()
    assert [f[0] for f in fills(result)] == [3, 4], "entered at bar 3, held one bar"
    assert result.fills["timestamp"][1] == T0 + dt.timedelta(days=4)


def test_a_short_position_s_stop_loss_is_a_buy_stop_above_the_base():
    config = BacktestConfig(initial_cash=100_000.0, allow_short=True, stop_loss=0.05)
    short = weights({0: {"A0": -1.0}})
    rows = [FLAT, (100, 110, 99, 100), (101, 106, 100, 104)]
    result = run_backtest(ohlc(rows), short, config).validate()
    assert fills(result) == [(1, -1000.0, 100.0, "market"), (2, 1000.0, 105.0, "stop_loss")]


def test_a_position_closed_and_reopened_in_one_bar_gets_new_exits_and_the_old_never_fill():
    """Bar 2: the market sell closes the position at the open, a resting limit buy reopens
    it there too; the old stop (95) is reached by the low but belongs to the closed
    position: cancelled, never filled. The new position's stop is 5% under its fill, 99."""
    orders = pl.DataFrame({
        "timestamp": [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=1)],
        "asset": ["A0"] * 3, "type": ["market", "market", "limit"],
        "quantity": [100.0, -100.0, 100.0], "limit_price": [None, None, 99.5],
        "stop_price": [None, None, None], "trail": [None, None, None]})
    rows = [FLAT, FLAT, (99, 99.5, 94, 96), FLAT]
    config = BacktestConfig(initial_cash=100_000.0, stop_loss=0.05)
    for result in (run_orders(ohlc(rows), orders, config).validate(),
                   run_reference(ohlc(rows), config=config, resting=orders)):
        assert fills(result) == [(1, 100.0, 100.0, "market"), (2, -100.0, 99.0, "market"),
                                 (2, 100.0, 99.0, "limit")]
        stops = result.orders.filter(pl.col("origin") == "stop_loss").sort("order_id")
        assert stops.select("status", "reason", "stop_price").rows() == [
            ("cancelled", "position_closed", 95.0),
            ("open", "stop_loss", pytest.approx(94.05, rel=1e-12))]
