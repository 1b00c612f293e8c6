"""The seed-style event-driven engine (engine/demo): without bugs it is the reference under
the `tradegap` profile on every fill; each wiring bug is the reference's switch it stands
for, or does what its name says, and only from its onset."""

from __future__ import annotations

import polars as pl
import pytest

from engine.data.synthetic import generate_market, momentum_scores
from engine.demo import Bug, Wiring, run_engine
from engine.reference import rules_for, run_reference
from engine.research.weights import top_k_weights

FEES = 0.001
CASH = 1_000_000.0
CONFIG = {"fees": FEES, "initial_cash": CASH}


def market(seed: int = 3, assets: int = 30, days: int = 200):
    prices = generate_market(assets, days, seed=seed, gaps=False)
    return prices, momentum_scores(prices)


def run(prices, scores, *bugs: Bug, invested: float = 1.0):
    return run_engine(prices, scores, k=8, every=5, invested=invested, fees=FEES, cash=CASH,
                      wiring=Wiring(bugs))


def rows(fills: pl.DataFrame) -> list[tuple]:
    return fills.select("timestamp", "asset", "quantity", "price", "fee").sort(
        "timestamp", "asset", "quantity").rows()


def assert_same_fills(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Every fill equal within 1e-9 (relative), row for row."""
    mine, theirs = rows(got), rows(expected)
    assert len(mine) == len(theirs)
    for x, y in zip(mine, theirs, strict=True):
        assert x[:2] == y[:2], (x, y)
        for p, q in zip(x[2:], y[2:], strict=True):
            assert abs(p - q) <= 1e-9 * max(abs(p), abs(q), 1e-3), (x, y)


def reference(prices, weights, **changes):
    config = {**CONFIG, **{k: v for k, v in changes.items() if k == "stop_loss"}}
    rules = rules_for(config).with_(**{k: v for k, v in changes.items() if k != "stop_loss"})
    return run_reference(prices, weights, config, rules=rules).fills


@pytest.mark.parametrize(("seed", "invested"), [(3, 1.0), (4, 0.9), (5, 1.0)])
def test_without_bugs_the_engine_is_the_reference_on_every_fill(seed, invested):
    prices, scores = market(seed)
    clean = run(prices, scores, invested=invested)
    assert clean.fills.height > 100
    assert_same_fills(clean.fills, reference(prices, clean.weights))
    for profile in ("tradegap", "vectorbt"):
        expected = run_reference(prices, clean.weights, {**CONFIG, "profile": profile})
        assert_same_fills(clean.fills, expected.fills)
        assert abs(clean.final_equity - expected.final_equity) <= 1e-9 * CASH


def test_the_strategy_decides_the_top_k_by_score():
    prices, scores = market()
    decided = run(prices, scores).weights
    assert decided.equals(top_k_weights(scores, 8, 5))


@pytest.mark.parametrize(("bug", "changes"), [
    (Bug("second_portfolio"), {"position_basis": "zero"}),
    (Bug("late_cache", param=1), {"position_basis": "stale", "stale_lag": 1}),
    (Bug("late_cache", param=2), {"position_basis": "stale", "stale_lag": 2}),
    (Bug("whole_target"), {"whole_targets": True}),
    (Bug("double_dispatch", param="after_batch"), {"booking": "twice_hidden"}),
    (Bug("double_dispatch", param="as_executed"), {"booking": "twice_executing"}),
    (Bug("double_log"), {"booking": "logged_twice"}),
    (Bug("fees_twice"), {"fee_charged": 2.0}),
    (Bug("stale_cash", param="first_buy"), {"cash_check": "first_buy"}),
    (Bug("stale_cash", param="opening"), {"cash_check": "opening"}),
    (Bug("wrong_bar", param=0), {"delay": 0, "point": "close"}),
    (Bug("wrong_bar", param=2), {"delay": 2}),
    (Bug("risk_manager", param=0.05), {"stop_loss": 0.05}),
], ids=str)
def test_a_bug_from_the_start_is_the_reference_switch_it_stands_for(bug, changes):
    prices, scores = market()
    clean = run(prices, scores)
    buggy = run(prices, scores, bug)
    assert_same_fills(buggy.fills, reference(prices, clean.weights, **changes))
    assert rows(buggy.fills) != rows(clean.fills)


@pytest.mark.parametrize("name", ["double_dispatch", "second_portfolio", "late_cache",
                                  "whole_target", "fees_twice", "risk_manager", "double_log",
                                  "stale_cash", "sizing_bias", "lost_order"])
def test_a_bug_from_mid_run_changes_nothing_before_its_onset(name):
    prices, scores = market()
    clean = run(prices, scores)
    since = clean.weights["timestamp"].unique().sort()[15]
    bar = prices["timestamp"].unique().sort().to_list().index(since)
    buggy = run(prices, scores, Bug(name, since=bar))
    before = pl.col("timestamp") <= since
    assert rows(buggy.fills.filter(before)) == rows(clean.fills.filter(before))
    assert rows(buggy.fills) != rows(clean.fills)


def test_a_fill_logged_twice_is_booked_once():
    prices, scores = market()
    clean = run(prices, scores)
    doubled = run(prices, scores, Bug("double_log"))
    assert rows(doubled.fills) == sorted(r for r in rows(clean.fills) for _ in (0, 1))
    assert doubled.final_equity == clean.final_equity


def test_dispatched_as_executed_the_batchs_later_buys_see_the_double_booking():
    """Booked twice as it executes, a sell's proceeds fund the batch's buys twice; booked
    after the batch, they do not (the second batch is the first to differ)."""
    prices, scores = market()
    clean = run(prices, scores)
    now = run(prices, scores, Bug("double_dispatch", param="as_executed"))
    later = run(prices, scores, Bug("double_dispatch", param="after_batch"))
    first = clean.fills["timestamp"].min()
    assert rows(later.fills.filter(pl.col("timestamp") == first)) == rows(
        clean.fills.filter(pl.col("timestamp") == first))
    assert rows(now.fills.filter(pl.col("timestamp") == first)) != rows(
        clean.fills.filter(pl.col("timestamp") == first))


def test_fees_charged_twice_are_logged_once_and_leave_less_cash():
    prices, scores = market()
    clean = run(prices, scores)
    twice = run(prices, scores, Bug("fees_twice"))
    first = clean.fills["timestamp"].min()
    mine = rows(twice.fills.filter(pl.col("timestamp") == first))
    theirs = rows(clean.fills.filter(pl.col("timestamp") == first))
    changed = [(x, y) for x, y in zip(mine, theirs, strict=True) if x != y]
    assert len(changed) == 1 and changed[0][0][2] < changed[0][1][2]  # the last buy shrinks
    assert twice.final_equity < clean.final_equity
    fills = twice.fills
    assert (fills["fee"] - (fills["quantity"] * fills["price"]).abs() * FEES).abs().max() < 1e-6


def test_a_stale_cash_check_lets_cash_go_negative():
    prices, scores = market()
    stale = run(prices, scores, Bug("stale_cash"))
    cash = CASH - (stale.fills["quantity"] * stale.fills["price"] + stale.fills["fee"]).cum_sum()
    assert cash.min() < -1.0
    clean = run(prices, scores)
    cash = CASH - (clean.fills["quantity"] * clean.fills["price"] + clean.fills["fee"]).cum_sum()
    assert cash.min() > -1e-6


def test_a_bug_is_refused_with_a_wrong_name_or_form():
    with pytest.raises(ValueError, match="bug must be one of"):
        Bug("typo")
    with pytest.raises(ValueError, match="wrong_bar"):
        Bug("wrong_bar", param=1)
    with pytest.raises(ValueError, match="each bug at most once"):
        Wiring.of("whole_target", "whole_target")


def test_a_cash_check_on_the_opening_balance_never_stops_an_accumulating_strategy():
    """Buys checked against the opening balance fill whole however far cash has gone
    below zero; checked against the balance at the batch's first buy, they stop once the
    batch begins with no cash."""
    prices, scores = market()
    opening = run(prices, scores, Bug("second_portfolio"), Bug("stale_cash", param="opening"))
    first_buy = run(prices, scores, Bug("second_portfolio"), Bug("stale_cash"))

    def lowest_cash(fills):
        return (CASH - (fills["quantity"] * fills["price"] + fills["fee"]).cum_sum()).min()

    assert lowest_cash(opening.fills) < -5 * CASH
    assert -CASH < lowest_cash(first_buy.fills) < 0
    assert opening.fills.height > first_buy.fills.height
