"""Resting orders and risk rules in the reference: hand-computed examples, one per rule.

Every example is one asset `A` (or two) over a few bars `(open, high, low, close)`; an
order decided at the close of bar 0 is first tried at bar 1 (docs/semantics.md, "Resting
orders and risk rules").
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine.reference import Rules, run_reference
from tests.resting_cases import table

DAY = [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(20)]
FLAT = (100.0, 101.0, 99.0, 100.0)


def bars(*rows, asset: str = "A") -> pl.DataFrame:
    return pl.DataFrame([(DAY[i], asset, *r, 1e9) for i, r in enumerate(rows)], orient="row",
                        schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                                "close": pl.Float64, "volume": pl.Float64})


def order(kind: str, quantity: float, bar: int = 0, asset: str = "A", **fields) -> dict:
    return {"timestamp": DAY[bar], "asset": asset, "type": kind, "quantity": quantity,
            **fields}


def run(prices, *rows, **settings):
    return run_reference(prices, config={"initial_cash": 1e6, **settings},
                         resting=table(list(rows)))


def fills(result) -> list[tuple]:
    """(bar, quantity, price, trigger) per fill."""
    return [(DAY.index(t), q, p, k) for t, q, p, k in
            result.fills.select("timestamp", "quantity", "price", "trigger").iter_rows()]


def statuses(result) -> list[tuple]:
    return list(result.orders.select("status", "reason").iter_rows())


HOLD = order("market", 100.0)  # 100 shares bought at the open of bar 1


# Fill prices


def test_limit_buy_fills_at_a_gapped_open_below_it_else_at_the_limit():
    gapped = run(bars(FLAT, (97, 99, 96, 98)), order("limit", 10.0, limit_price=98.0))
    touched = run(bars(FLAT, (100, 101, 97, 98)), order("limit", 10.0, limit_price=98.0))
    assert fills(gapped) == [(1, 10.0, 97.0, "limit")]
    assert fills(touched) == [(1, 10.0, 98.0, "limit")]


def test_limit_sell_mirrors_and_takes_no_slippage():
    result = run(bars(FLAT, (100, 104, 99, 103)), HOLD,
                 order("limit", -40.0, limit_price=103.0), slippage=0.01)
    assert fills(result)[1] == (1, -40.0, 103.0, "limit")


def test_stop_buy_fills_at_the_trigger_plus_slippage_capped_at_the_high():
    slipped = run(bars(FLAT, (100, 104, 99, 103)), order("stop", 10.0, stop_price=102.0),
                  slippage=0.01)
    capped = run(bars(FLAT, (100, 102.5, 99, 102)), order("stop", 10.0, stop_price=102.0),
                 slippage=0.01)
    assert fills(slipped) == [(1, 10.0, pytest.approx(102.0 * 1.01), "stop")]
    assert fills(capped) == [(1, 10.0, 102.5, "stop")]


def test_sell_stop_gapped_through_fills_at_the_open_floored_at_the_low():
    result = run(bars(FLAT, FLAT, (90, 92, 89.5, 91)), HOLD,
                 order("stop", -100.0, stop_price=95.0), slippage=0.01)
    assert fills(result)[1] == (2, -100.0, 89.5, "stop")  # 90 × 0.99 = 89.1 < low 89.5


def test_stop_limit_gap_is_a_limit_from_the_open():
    result = run(bars(FLAT, (103, 104, 101.5, 102)),
                 order("stop_limit", 10.0, stop_price=102.0, limit_price=102.5))
    assert fills(result) == [(1, 10.0, 102.5, "stop_limit")]  # open 103 > limit, low ≤ it


def test_stop_limit_triggered_inside_the_bar_fills_at_the_trigger_within_its_limit():
    result = run(bars(FLAT, (100, 104, 99.5, 103)),
                 order("stop_limit", 10.0, stop_price=102.0, limit_price=102.5))
    assert fills(result) == [(1, 10.0, 102.0, "stop_limit")]


def test_stop_limit_with_its_limit_behind_the_trigger_waits_for_the_path_to_come_back():
    # nearest: high (100 → 103.5) before low; the low 96 then reaches the limit 98.
    back = run(bars(FLAT, (100, 103.5, 96, 101)),
               order("stop_limit", 10.0, stop_price=103.0, limit_price=98.0))
    # olhc: the low comes first, the high triggers last, the close 101 stays above 98:
    # it rests as a limit and fills at bar 2 where the low reaches 98.
    rests = run(bars(FLAT, (100, 103.5, 96, 101), (99, 99.5, 97.5, 99)),
                order("stop_limit", 10.0, stop_price=103.0, limit_price=98.0),
                intrabar_path="olhc")
    assert fills(back) == [(1, 10.0, 98.0, "stop_limit")]
    assert fills(rests) == [(2, 10.0, 98.0, "stop_limit")]


def test_trailing_stop_follows_the_high_after_each_bar_and_lags_one():
    prices = bars(FLAT, FLAT, (100, 110, 99, 105), (105, 106, 104.6, 105), (105, 105, 98, 99))
    # decided at bar 1's close 100: level 95; after bar 2 the peak is 110 → level 104.5.
    result = run(prices, HOLD, order("trailing_stop", -100.0, bar=1, trail=0.05))
    assert fills(result)[1] == (4, -100.0, 104.5, "trailing_stop")
    # bar 3's low 104.4 did reach 104.5: the fill is at bar 3.
    assert fills(run(prices.with_columns(low=pl.when(pl.col("timestamp") == DAY[3])
                                         .then(104.4).otherwise(pl.col("low"))),
                     HOLD, order("trailing_stop", -100.0, bar=1, trail=0.05)))[1][0] == 3


def test_trailing_stop_on_closes_and_in_absolute_amounts():
    prices = bars(FLAT, FLAT, (100, 110, 99, 105), (105, 106, 100.5, 101))
    by_close = run(prices, HOLD, order("trailing_stop", -100.0, bar=1, trail=0.04),
                   trail_source="close")
    absolute = run(prices, HOLD, order("trailing_stop", -100.0, bar=1, trail=4.0,
                                       trail_mode="absolute"), trail_source="close")
    assert fills(by_close)[1] == (3, -100.0, pytest.approx(105 * 0.96), "trailing_stop")
    assert fills(absolute)[1] == (3, -100.0, 101.0, "trailing_stop")


# Expiry, OCO, brackets


def test_valid_until_counts_bars_after_the_decision_then_expires():
    prices = bars(FLAT, FLAT, FLAT, (100, 101, 97, 98))
    two = run(prices, order("limit", 10.0, limit_price=98.0, valid_until=2))
    three = run(prices, order("limit", 10.0, limit_price=98.0, valid_until=3))
    assert fills(two) == [] and statuses(two) == [("expired", None)]
    assert fills(three) == [(3, 10.0, 98.0, "limit")]


def test_valid_until_as_a_timestamp_is_the_last_bar_at_or_before_it():
    prices = bars(FLAT, FLAT, FLAT, (100, 101, 97, 98))
    rows = table([order("limit", 10.0, limit_price=98.0)]).with_columns(
        valid_until=pl.lit(DAY[2] + dt.timedelta(hours=12)))
    result = run_reference(prices, config={}, resting=rows)
    assert result.fills.is_empty()
    assert result.orders["valid_until"].to_list() == [DAY[2]]


def test_an_oco_fill_cancels_its_siblings():
    result = run(bars(FLAT, (100, 103, 99, 102), (102, 102, 96, 97)),
                 order("stop", 10.0, stop_price=102.5, group="g"),
                 order("limit", 10.0, limit_price=97.0, group="g"))
    assert fills(result) == [(1, 10.0, 102.5, "stop")]
    assert statuses(result) == [("filled", None), ("cancelled", "oco")]


def test_bracket_children_are_not_tried_on_the_entry_bar():
    # Bar 1 (entry at 100) dips to 94 below the stop 95: not tried; bar 2 reaches 104.
    result = run(bars(FLAT, (100, 101, 94, 100), (100, 104, 99, 103)),
                 order("market", 10.0, id=1), order("stop", -10.0, stop_price=95.0, parent=1),
                 order("limit", -10.0, limit_price=104.0, parent=1))
    assert fills(result) == [(1, 10.0, 100.0, "market"), (2, -10.0, 104.0, "limit")]
    assert statuses(result)[1] == ("cancelled", "oco")


def test_a_bracket_whose_entry_never_fills_takes_its_children_along():
    result = run(bars(FLAT, FLAT, FLAT),
                 order("limit", 10.0, limit_price=90.0, id=1, valid_until=1),
                 order("stop", -10.0, stop_price=85.0, parent=1),
                 order("limit", -10.0, limit_price=95.0, parent=1))
    assert statuses(result) == [("expired", None), ("cancelled", "cancelled"),
                                ("cancelled", "cancelled")]


GAP_PAST_TARGET = (112.0, 113.0, 94.0, 100.0)  # the docs' example: stop 95, target 110


def test_the_path_decides_a_stop_and_target_in_one_bar_unless_stop_first():
    prices = bars(FLAT, FLAT, GAP_PAST_TARGET)
    rows = (HOLD, order("stop", -100.0, bar=1, stop_price=95.0, group="exit"),
            order("limit", -100.0, bar=1, limit_price=110.0, group="exit"))
    assert fills(run(prices, *rows))[1] == (2, -100.0, 112.0, "limit")  # the gapped open
    assert fills(run(prices, *rows, stop_first=True))[1] == (2, -100.0, 95.0, "stop")
    assert fills(run(prices, *rows, profile="vectorbt"))[1][2] == 95.0


GAP_PAST_STOP = (94.0, 111.0, 93.0, 100.0)  # stop 95 gapped at the open, target 110 reached


def test_which_exit_wins_when_the_open_gaps_past_one_level_and_the_bar_reaches_the_other():
    from engine.reference import rules_for

    for bar, path, stop, target in ((GAP_PAST_STOP, (2, -100.0, 94.0, "stop"),
                                     (2, -100.0, 94.0, "stop"), (2, -100.0, 110.0, "limit")),
                                    (GAP_PAST_TARGET, (2, -100.0, 112.0, "limit"),
                                     (2, -100.0, 95.0, "stop"), (2, -100.0, 112.0, "limit"))):
        prices = bars(FLAT, FLAT, bar)
        rows = (HOLD, order("stop", -100.0, bar=1, stop_price=95.0, group="exit"),
                order("limit", -100.0, bar=1, limit_price=110.0, group="exit"))
        base = rules_for({"initial_cash": 1e6})
        won = [fills(run_reference(prices, config={"initial_cash": 1e6}, rules=rules,
                                   resting=table(list(rows))))[1]
               for rules in (base, base.with_(stop_first=True),
                             base.with_(take_profit_first=True))]
        assert won == [path, stop, target]


@pytest.mark.parametrize(("path", "winner"), [("ohlc", "limit"), ("olhc", "stop"),
                                              ("nearest", "stop")])
def test_intrabar_path_orders_the_extremes(path, winner):
    # open 100, high 104 (4 away), low 97 (3 away): nearest goes to the low first.
    prices = bars(FLAT, FLAT, (100, 104, 97, 100))
    result = run(prices, HOLD, order("stop", -100.0, bar=1, stop_price=98.0, group="x"),
                 order("limit", -100.0, bar=1, limit_price=103.0, group="x"),
                 intrabar_path=path)
    assert fills(result)[1][3] == winner


def test_a_sell_never_exceeds_the_position():
    result = run(bars(FLAT, FLAT, (100, 104, 99, 103)), order("market", 30.0),
                 order("limit", -100.0, bar=1, limit_price=102.0))
    assert fills(result)[1] == (2, -30.0, 102.0, "limit")


def test_a_resting_buy_pays_fees_and_shrinks_to_the_cash():
    result = run(bars(FLAT, (100, 101, 97, 98)), order("limit", 100.0, limit_price=98.0),
                 initial_cash=4_900.0, fees=0.001)
    ((_, quantity, price, _),) = fills(result)
    assert price == 98.0 and quantity == pytest.approx(4_900.0 / 1.001 / 98.0)
    assert result.orders["reason"].to_list() == ["shrunk_to_cash"]


# Position rules


def weights(*rows) -> pl.DataFrame:
    return pl.DataFrame([(DAY[t], a, w) for t, a, w in rows], orient="row",
                        schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                "weight": pl.Float64})


def test_stop_loss_and_take_profit_exit_positions_that_weights_open():
    prices = bars(FLAT, (100, 101, 99, 102), (101, 102, 94, 95))
    result = run_reference(prices, weights((0, "A", 0.5)),
                           {"initial_cash": 1e4, "stop_loss": 0.05, "take_profit": 0.1})
    assert fills(result) == [(1, 50.0, 100.0, "market"), (2, -50.0, 95.0, "stop_loss")]
    exits = result.orders.filter(pl.col("type") != "market")
    assert exits.select("type", "status", "reason").rows() == [
        ("stop", "filled", "stop_loss"), ("limit", "cancelled", "oco")]
    assert exits["stop_price"][0] == 95.0 and exits["limit_price"][1] == pytest.approx(110.0)


@pytest.mark.parametrize("rearms", [True, False])
def test_a_rule_exit_reads_the_position_a_fill_announces_and_keeps_its_side(rearms):
    """An engine that books each fill twice as it executes announces a fill booked once.
    Bought 50 (believed 100), then a target of 25% sells 75 at 100: as announced, the long
    is 25 and keeps its stop at 95; booked again, the engine believes it is short 50. The
    stop stays a sell: reached at bar 2 (low 93) it finds no long to sell, and never buys
    the believed short back (whether or not a reversal would arm new exits)."""
    prices = bars(FLAT, (100, 101, 99, 100), (100, 101, 93, 96))
    result = run_reference(prices, weights((0, "A", 0.5), (1, "A", 0.25)), {"initial_cash": 1e4},
                           rules=Rules(stop_loss=0.05, reversal_rearms=rearms,
                                       booking="twice_executing"))
    assert fills(result) == [(1, 50.0, 100.0, "market"), (2, -75.0, 100.0, "market")]


def test_stop_base_close_measures_from_the_entry_bars_close():
    prices = bars(FLAT, (100, 101, 99, 102), (101, 102, 96, 97))
    fill_base = run_reference(prices, weights((0, "A", 0.5)), {"stop_loss": 0.03})
    close_base = run_reference(prices, weights((0, "A", 0.5)),
                               {"stop_loss": 0.03, "stop_base": "close"})
    assert fills(fill_base)[1:] == [(2, -5000.0, 97.0, "stop_loss")]
    assert fills(close_base)[1:] == [(2, -5000.0, pytest.approx(102 * 0.97), "stop_loss")]


def test_trailing_stop_rule_trails_from_the_stop_base():
    prices = bars(FLAT, (100, 101, 99, 100), (100, 108, 100, 107), (107, 107.5, 100, 101))
    result = run_reference(prices, weights((0, "A", 0.5)), {"trailing_stop": 0.05})
    # peak 100 (the fill) → 108 after bar 2 → level 102.6, reached at bar 3.
    assert fills(result)[1:] == [(3, -5000.0, pytest.approx(108 * 0.95), "trailing_stop")]


def test_max_bars_exits_at_the_open_n_bars_after_the_entry():
    prices = bars(FLAT, FLAT, FLAT, (103, 104, 102, 103), FLAT)
    result = run_reference(prices, weights((0, "A", 0.5)), {"max_bars": 2})
    assert fills(result) == [(1, 5000.0, 100.0, "market"), (3, -5000.0, 103.0, "time_exit")]
    assert result.orders.filter(pl.col("reason") == "time_exit")["status"].to_list() == [
        "filled"]


def test_a_target_to_zero_cancels_the_assets_resting_orders():
    prices = bars(FLAT, FLAT, FLAT, FLAT)
    result = run_reference(prices, weights((0, "A", 0.5), (1, "A", 0.0)), {},
                           resting=table([order("stop", -10.0, stop_price=90.0)]))
    assert result.orders.filter(pl.col("type") == "stop")[["status", "reason"]].rows() == [
        ("cancelled", "position_closed")]


def test_rule_exits_go_when_the_position_is_closed_otherwise():
    prices = bars(FLAT, FLAT, FLAT, (100, 101, 80, 81))
    result = run_reference(prices, weights((0, "A", 0.5), (1, "A", 0.0)),
                           {"stop_loss": 0.05, "take_profit": 0.05})
    assert [k for *_, k in fills(result)] == ["market", "market"]
    assert set(result.orders.filter(pl.col("type") != "market")["reason"]) == {
        "position_closed"}


# Portfolio rules


def test_max_positions_rejects_the_entry_past_the_limit():
    prices = pl.concat([bars(FLAT, FLAT, asset=a) for a in ("A", "B", "C")])
    result = run_reference(prices, weights((0, "A", 0.2), (0, "B", 0.2), (0, "C", 0.2)),
                           {"max_positions": 2})
    assert result.fills["asset"].to_list() == ["A", "B"]
    assert result.rejections.rows() == [(DAY[0], "C", "max_positions")]


def test_max_weight_and_max_gross_reject_orders_that_would_break_them():
    prices = pl.concat([bars(FLAT, FLAT, asset=a) for a in ("A", "B")])
    weight = run(prices, order("market", 30.0), order("market", 20.0, asset="B"),
                 initial_cash=1e4, max_weight=0.25)
    gross = run(prices, order("market", 20.0), order("limit", 90.0, asset="B",
                                                     limit_price=100.0),
                initial_cash=1e4, max_gross=1.0)
    assert weight.rejections["reason"].to_list() == ["max_weight"]
    assert weight.fills["asset"].to_list() == ["B"]
    assert gross.rejections["reason"].to_list() == ["max_gross"]
    assert gross.orders["status"].to_list() == ["filled", "rejected"]


def test_halt_drawdown_blocks_entries_but_not_exits():
    prices = pl.concat([bars(FLAT, FLAT, (50, 51, 49, 50), FLAT, FLAT, asset=a)
                        for a in ("A", "B")])
    result = run_reference(prices, weights((0, "A", 1.0), (2, "B", 0.5)),
                           {"initial_cash": 1e4, "halt_drawdown": 0.2})
    assert result.rejections.rows() == [(DAY[2], "B", "halt_drawdown")]
    assert result.fills.filter(pl.col("quantity") < 0)["asset"].to_list() == ["A"]
