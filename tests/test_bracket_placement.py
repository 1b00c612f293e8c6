"""A bracket child follows the order that carries its parent's entry, in every path.

The case that once had three answers: at one decision, `market A 10 (id p)`, `market A 5`,
`limit A −15 @ 12 (parent p)`, over bars whose high reaches 12.5 every day. The two market
orders are one order of 15 (the first `merged` into the second), which carries the
parent's entry: the child goes live from the bar after it fills (bar 1, at the open 10)
and sells 15 at 12 on bar 2. The order table through the CLI and `run_orders`, a callback
strategy making the same calls (`Context.order`), and the reference all say so; so they do
for a parent replaced by a target, refused by a portfolio rule, expired unfilled, filled
before its child is placed, and filled in part (docs/semantics.md, "Brackets").
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine import BacktestConfig, run_orders, run_strategy
from engine.reference import run_reference
from engine.reference.bars import Bars
from engine.reference.orders import Call
from engine.reference.resting import order_table_rows
from engine.reference.rules import rules_for
from engine.reference.simulation import Place, Simulation
from pipelines.cli import main
from tests.resting_cases import Replay, table

T0 = dt.datetime(2024, 1, 1)


def bars(n: int = 5, assets: tuple[str, ...] = ("A",), volume: float = 1e9) -> pl.DataFrame:
    """Flat bars (open 10, close 10) whose high reaches 12.5 and low 9.5 every day."""
    return pl.DataFrame(
        [(T0 + dt.timedelta(days=t), a, 10.0, 12.5, 9.5, 10.0, volume)
         for t in range(n) for a in assets],
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "open": pl.Float64,
                "high": pl.Float64, "low": pl.Float64, "close": pl.Float64,
                "volume": pl.Float64}, orient="row")


def row(t: int, kind: str, quantity: float, asset: str = "A", **fields) -> dict:
    return {"timestamp": T0 + dt.timedelta(days=t), "asset": asset, "type": kind,
            "quantity": quantity, **fields}


def fills(result) -> list[tuple[int, float, float, str]]:
    """(bar, quantity, price, trigger) of every fill (of a result, or a fills table)."""
    frame = result if isinstance(result, pl.DataFrame) else result.fills
    days = (frame["timestamp"] - T0).dt.total_days().to_list()
    return list(zip(days, frame["quantity"].to_list(), frame["price"].to_list(),
                    frame["trigger"].to_list(), strict=True))


def statuses(result) -> list[str]:
    return result.orders.sort("order_id")["status"].to_list()


def three_paths(rows: list[dict], config: BacktestConfig, prices: pl.DataFrame):
    """(order table, callback strategy, reference) results of one order table."""
    orders = table(rows)
    return (run_orders(prices, orders, config), run_strategy(prices, Replay(rows), config),
            run_reference(prices, config=config, resting=orders))


ISSUE_CASE = [row(0, "market", 10.0, id=1), row(0, "market", 5.0),
              row(0, "limit", -15.0, limit_price=12.0, parent=1)]


def test_a_child_placed_after_its_parent_merged_follows_the_merged_order(tmp_path):
    expected = [(1, 15.0, 10.0, "market"), (2, -15.0, 12.0, "limit")]
    config = BacktestConfig(initial_cash=10_000.0)
    for result in three_paths(ISSUE_CASE, config, bars()):
        assert fills(result) == expected
        assert statuses(result) == ["merged", "filled", "filled"]
    prices, orders = tmp_path / "prices.parquet", tmp_path / "orders.csv"
    bars().write_parquet(prices)
    table(ISSUE_CASE).write_csv(orders)
    assert main(["backtest", "--prices", str(prices), "--orders", str(orders), "--out",
                 str(tmp_path / "run")]) == 0
    assert fills(pl.read_parquet(tmp_path / "run" / "fills.parquet")) == expected


def test_a_child_placed_before_the_merge_gives_the_same_answer():
    rows = [ISSUE_CASE[0], ISSUE_CASE[2], ISSUE_CASE[1]]
    for result in three_paths(rows, BacktestConfig(initial_cash=10_000.0), bars()):
        assert fills(result) == [(1, 15.0, 10.0, "market"), (2, -15.0, 12.0, "limit")]
        assert statuses(result) == ["merged", "filled", "filled"]


def test_a_child_of_a_parent_that_already_filled_is_live_from_the_next_bar():
    # the entry fills on bar 1; the child, placed at bar 2's close, sells on bar 3
    rows = [row(0, "market", 10.0, id=1), row(2, "limit", -10.0, limit_price=12.0, parent=1)]
    for result in three_paths(rows, BacktestConfig(initial_cash=10_000.0), bars()):
        assert fills(result) == [(1, 10.0, 10.0, "market"), (3, -10.0, 12.0, "limit")]


def test_a_child_of_a_parent_that_ended_unfilled_is_cancelled():
    # a buy limit at 9 the bars never reach, valid for one bar: it expires after bar 1
    rows = [row(0, "limit", 10.0, limit_price=9.0, valid_until=1, id=1),
            row(0, "limit", -10.0, limit_price=12.0, parent=1),
            row(2, "stop", -10.0, stop_price=9.6, parent=1)]
    for result in three_paths(rows, BacktestConfig(initial_cash=10_000.0), bars()):
        assert fills(result) == []
        assert statuses(result) == ["expired", "cancelled", "cancelled"]
        assert result.orders["reason"].to_list()[1:] == ["cancelled", "cancelled"]


def test_a_child_of_a_parent_a_portfolio_rule_refused_is_cancelled():
    rows = [row(0, "market", 10.0, asset="B"), row(0, "market", 10.0, id=1),
            row(0, "limit", -10.0, limit_price=12.0, parent=1)]
    config = BacktestConfig(initial_cash=10_000.0, max_positions=1)
    for result in three_paths(rows, config, bars(assets=("A", "B"))):
        assert fills(result) == [(1, 10.0, 10.0, "market")]
        assert statuses(result) == ["filled", "rejected", "cancelled"]


@pytest.mark.parametrize("child_first", [True, False])
def test_a_child_of_a_parent_a_target_replaced_is_cancelled(child_first):
    """A target states the final position: no order carries the parent's entry any more,
    whether the target comes after the child or between the parent and the child."""
    parent, child = ISSUE_CASE[0], ISSUE_CASE[2]
    config = BacktestConfig(initial_cash=10_000.0)
    target = Call("target_shares", "A", 3.0)
    engine = run_strategy(bars(), Replay([parent, child], {
        (0, 1 if child_first else 0): [lambda ctx: ctx.order_target("A", 3)]}), config)
    placed = [Place(r) for r in order_table_rows(table([parent, child]))]
    calls = [*placed, target] if child_first else [placed[0], target, placed[1]]
    reference = Simulation(Bars.from_frame(bars()), {0: calls}, rules_for(config.to_dict()),
                           10_000.0).run()
    child_id = 1 if child_first else 2
    expected = ["replaced", "cancelled", "filled"] if child_first else [
        "replaced", "filled", "cancelled"]
    assert fills(engine) == [(1, 3.0, 10.0, "market")]
    assert [f[:3] for f in reference.fills] == [(1, "A", 3.0)]
    assert statuses(engine) == expected
    assert [record.status for record in reference.orders] == expected
    assert engine.orders["reason"][child_id] == reference.orders[child_id].reason == "cancelled"


def test_a_parent_filled_in_part_keeps_its_live_children():
    # zipline's cap (10% of volume 100) fills 10 of the 25 at bar 1's close (10 with
    # 5 bp slippage); the child is live from bar 2, where the entry's next 10 spend the
    # cap before it; the entry expires after bar 2, filled in part, and the child, still
    # live, sells 5 at bar 3's close
    rows = [row(0, "limit", 25.0, limit_price=11.0, valid_until=2, id=1),
            row(0, "limit", -5.0, limit_price=9.9, parent=1)]
    config = BacktestConfig.for_profile("zipline", initial_cash=10_000.0)
    buy, sell = 10.0 * 1.0005, 10.0 * 0.9995
    for result in three_paths(rows, config, bars(volume=100.0)):
        assert fills(result) == [(1, 10.0, pytest.approx(buy), "limit"),
                                 (2, 10.0, pytest.approx(buy), "limit"),
                                 (3, -5.0, pytest.approx(sell), "limit")]
        assert statuses(result) == ["expired", "filled"]
