"""Sizing methods, netting of pending orders, and rebalance (docs/semantics.md, Orders)."""

from __future__ import annotations

import pytest

from engine import BacktestConfig, Strategy, run_strategy
from tests.builders import bars

# Two assets, four bars; the opens differ from the closes so fill prices are recognisable.
OPEN = [[10.0, 40.0], [20.0, 50.0], [25.0, 40.0], [20.0, 50.0]]
CLOSE = [[12.0, 45.0], [22.0, 44.0], [24.0, 48.0], [20.0, 50.0]]


class Script(Strategy):
    """Calls `actions[bar](ctx)` at the bars listed."""

    def __init__(self, actions):
        self.actions = actions
        self.ids = {}

    def on_bar(self, ctx):
        if ctx.bar in self.actions:
            self.ids[ctx.bar] = self.actions[ctx.bar](ctx)


def run(actions, **config):
    config = BacktestConfig(**{"initial_cash": 1000.0, **config})
    return run_strategy(bars(OPEN, CLOSE), Script(actions), config)


def quantities(result):
    return result.fills["quantity"].to_list()


def test_order_trades_a_number_of_shares():
    assert quantities(run({0: lambda c: c.order("A0", 7)})) == [7.0]


def test_order_value_buys_shares_worth_the_value_at_the_fill_price():
    assert quantities(run({0: lambda c: c.order_value("A0", 100.0)})) == [100.0 / 20.0]


def test_order_percent_uses_the_book_value_at_the_fill():
    assert quantities(run({0: lambda c: c.order_percent("A1", 0.5)})) == [500.0 / 50.0]


def test_order_target_trades_only_the_delta():
    result = run({0: lambda c: c.order("A0", 10), 1: lambda c: c.order_target("A0", 15)})
    assert quantities(result) == [10.0, 5.0]


def test_order_target_value_trades_the_delta_at_the_fill_price():
    result = run({0: lambda c: c.order("A0", 10), 1: lambda c: c.order_target_value("A0", 500)})
    assert quantities(result) == [10.0, 500.0 / 25.0 - 10.0]


def test_order_target_percent_values_the_book_at_the_fill_price():
    result = run({0: lambda c: c.order("A0", 10),
                  1: lambda c: c.order_target_percent("A0", 0.5)})
    value = 1000.0 - 10 * 20.0 + 10 * 25.0
    assert quantities(result) == [10.0, pytest.approx(0.5 * value / 25.0 - 10.0, rel=1e-15)]


def test_target_percent_twice_trades_once():
    def twice(ctx):
        first = ctx.order_target_percent("A0", 0.5)
        second = ctx.order_target_percent("A0", 0.5)
        return first.tolist() + second.tolist()

    result = run({0: twice})
    assert quantities(result) == [25.0]
    statuses = dict(zip(result.orders["order_id"], result.orders["status"], strict=True))
    assert statuses == {0: "replaced", 1: "filled"}
    assert result.orders["reason"][0] == "replaced by order 1"


def test_a_target_nets_an_earlier_pending_order():
    def buy_then_target(ctx):
        ctx.order("A0", 10)
        ctx.order_target("A0", 10)

    assert quantities(run({0: buy_then_target})) == [10.0]


def test_delta_orders_on_one_asset_merge_into_one_fill():
    def twice(ctx):
        ctx.order("A0", 5)
        ctx.order("A0", 3)

    result = run({0: twice})
    assert quantities(result) == [8.0]
    assert result.orders["status"].to_list() == ["merged", "filled"]
    assert result.fills["order_id"].to_list() == [1]


def test_a_delta_after_a_target_adds_to_it():
    def target_then_add(ctx):
        ctx.order_target("A0", 10)
        ctx.order("A0", 2)

    assert quantities(run({0: target_then_add})) == [12.0]


def test_array_calls_place_one_order_per_asset():
    result = run({0: lambda c: c.order_target_percent(["A0", "A1"], [0.2, 0.4])})
    assert sorted(zip(result.fills["asset"], quantities(result), strict=True)) == [
        ("A0", 200.0 / 20.0), ("A1", 400.0 / 50.0)]


def test_rebalance_closes_what_is_not_targeted_and_submits_sells_first():
    result = run({
        0: lambda c: c.order_target_percent(["A0", "A1"], [0.4, 0.4]),
        1: lambda c: c.rebalance({"A1": 0.9}),
    })
    second = result.orders.filter(result.orders["created"] == result.equity["timestamp"][1])
    assert second["asset"].to_list() == ["A0", "A1"], "the sell of A0 is submitted first"
    assert second["amount"].to_list() == [0.0, 0.9]
    last = result.positions.filter(result.positions["timestamp"] == result.equity["timestamp"][2])
    assert last["asset"].to_list() == ["A1"]


def test_the_pending_view_estimates_open_orders_at_the_close():
    seen = {}

    def look(ctx):
        ctx.order_target("A0", 4)
        seen["pending"] = ctx.pending.tolist()
        seen["open"] = ctx.has_open_order.tolist()

    run({0: look})
    assert seen == {"pending": [4.0, 0.0], "open": [True, False]}


def test_unknown_assets_and_repeated_assets_are_refused():
    with pytest.raises(KeyError, match="ZZZ"):
        run({0: lambda c: c.order("ZZZ", 1)})
    with pytest.raises(ValueError, match="twice"):
        run({0: lambda c: c.order(["A0", "A0"], 1)})


def test_long_only_sells_are_capped_at_the_position():
    result = run({0: lambda c: c.order("A0", 3), 1: lambda c: c.order("A0", -10)})
    assert quantities(result) == [3.0, -3.0]


def test_shorts_are_allowed_by_the_flag():
    result = run({0: lambda c: c.order("A0", -3)}, allow_short=True)
    assert quantities(result) == [-3.0]
    assert result.equity["cash"][1] == 1000.0 + 3 * 20.0
