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


@pytest.fixture(scope="module")
def many_exits():
    """A seed-style engine whose risk manager exits far more often than a rule needs to be
    named (every position 5% below its entry's fill price), against the reference."""
    from engine.data.synthetic import generate_market, momentum_scores
    from engine.demo.engine import run_engine
    from engine.demo.wiring import Bug, Wiring
    from engine.reference import run_reference

    prices = generate_market(n_assets=60, n_days=21 * 24, seed=11, gaps=False)
    run = run_engine(prices, momentum_scores(prices), k=12, every=21, fees=0.001,
                     wiring=Wiring((Bug("risk_manager", 0, 0.05),)))
    config = {"fees": 0.001, "initial_cash": 1_000_000.0}
    reference = run_reference(prices, run.weights, config).fills.select(
        "timestamp", "asset", "quantity", "price", "fee")
    return (Side(reference, rules=rules_for(config), name="reference"),
            Side(run.fills, name="engine"), prices, run.weights)


def test_the_first_pass_stops_once_the_exits_name_their_rule_and_the_answer_is_the_same(
        many_exits, monkeypatch):
    """The pass that sets a risk manager's exits apart only has to name their rule (the
    pass after it replays the rule): it stops after `SETTLED` exits one rule fits, and the
    analysis is the one a first pass over every bar gives."""
    from engine.gap import diagnose

    passes = []
    run = diagnose.Diagnoser.run

    def recorded(self):
        found = run(self)
        passes.append((self.settle, len(found.verdicts), found))
        return found

    monkeypatch.setattr(diagnose.Diagnoser, "run", recorded)
    settled = analyze(*many_exits)
    first = next(p for p in passes if p[0])
    assert first[2].undecided and first[1] < len(passes[-1][2].verdicts) / 2
    assert sum(map(len, first[2].undecided.values())) >= diagnose.SETTLED
    monkeypatch.setattr(diagnose, "SETTLED", 10**9)
    whole = analyze(*many_exits)
    faults = [(f["cause"], f["what"], f["onset"]) for f in settled.summary["faults"]]
    assert faults == [(f["cause"], f["what"], f["onset"]) for f in whole.summary["faults"]]
    assert any(cause == "exit_rule" for cause, *_ in faults)
    assert settled.summary["verdict"] == whole.summary["verdict"] == "explained"
    assert settled.gap_fills.equals(whole.gap_fills)
    assert settled.summary["attribution"] == pytest.approx(whole.summary["attribution"])
