"""Orders no decision made: a risk manager's exits are set apart and named as its rule."""

from __future__ import annotations

import polars as pl
import pytest

from engine.gap.analyze import Side, analyze
from engine.reference import rules_for
from tests.gap_corpus import markets
from tests.gap_corpus.faults import StopLossManager
from tests.gap_corpus.loop import run_loop

MARKET = "spare21"


@pytest.fixture(scope="module")
def stopped():
    prices, weights = markets.prices(MARKET), markets.weights(MARKET)
    fees = markets.MARKETS[MARKET].fees
    a = run_loop(prices, weights, markets.INITIAL_CASH, fees)
    b = run_loop(prices, weights, markets.INITIAL_CASH, fees, [StopLossManager(level=0.08)])
    rules = rules_for({"profile": "vectorbt", "fees": fees,
                       "initial_cash": markets.INITIAL_CASH})
    return analyze(Side(a, rules=rules, name="A"), Side(b, name="B"), prices, weights,
                   markets.INITIAL_CASH)


def test_a_risk_managers_exits_are_one_cause_with_the_rule_they_follow(stopped):
    rules = [f for f in stopped.summary["faults"] if f["cause"] == "exit_rule"]
    assert len(rules) == 1
    assert rules[0]["what"].startswith("exits at 8.0% below the entry's fill price, at the "
                                       "next open once a close passed it")
    causes = {f["cause"] for f in stopped.summary["faults"]}
    assert not causes & {"fill_price", "timing", "sizing_basis", "cash_limit"}


def test_the_exits_between_decisions_are_labelled_with_the_rule(stopped):
    exits = stopped.gap_fills.filter(pl.col("cause") == "exit_rule")
    assert exits.height >= 10
    assert (exits["quantity_b"] < 0).all()
    assert exits["quantity_a"].is_null().all()
    assert stopped.summary["attribution"]["exit_rule"] != 0.0
