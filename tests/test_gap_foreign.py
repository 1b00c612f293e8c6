"""The gap analysis on an engine it was not built around (tests/foreign_engine.py).

The engine is a queue-driven backtester (MarketEvent, SignalEvent, OrderEvent, FillEvent;
a NaivePortfolio with `current_positions`/`current_holdings` dicts; an execution handler
filling at the next open), whose bug-free form fills as `engine.run_backtest` does. Each of
its wiring faults, from the start or from mid-run, alone or two or three at once, is judged
as the drawn engines are: the analysis names only the planted faults' causes (or
`propagated`), each at an onset between the fault's switch and the first fill it changed;
the verdict is `explained` when every planted fault is in the vocabulary and `unexplained`
when one outside it changed a fill; the report's first sentence names root causes only.
"""

from __future__ import annotations

from functools import cache

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import momentum_scores
from engine.gap.analyze import Side, analyze
from engine.reference import rules_for
from engine.research.weights import top_k_weights
from engine.results.compare import Tolerance, join_sides
from tests.foreign_engine import Backtest, Fault, Faults
from tests.other_styles import (
    SPARE,
    TIGHT,
    Market,
    assert_explained_as_directly,
    prices,
    problems_in,
)

CASH = 1_000_000.0
FEES = 0.001

# The causes that name each fault (any one does); none: outside the vocabulary.
CAUSES_OF: dict[str, tuple[str, ...]] = {
    "fill_twice": ("duplicate_fill",),
    "positions_from_order": (),
    "day_copy": ("cash_limit",),
    "yesterday_close": ("sizing_basis",),
    "fees_twice": ("sizing_basis", "fee"),
    "fee_logged_twice": ("fee",),
    "whole_target": ("accumulation",),
    "same_close": ("look_ahead",),
    "per_share_fee": ("fee",),
    "stop_loss": ("exit_rule",),
    "whole_shares": ("rounding",),
    "sizing_bias": (),
    "lost_order": (),
}




@cache
def weights(market: Market) -> pl.DataFrame:
    chosen = top_k_weights(momentum_scores(prices(market)), k=market.k, every=market.every)
    return chosen.with_columns(pl.col("weight") * market.invested)


def decision_bars(market: Market) -> list[int]:
    stamps = prices(market)["timestamp"].unique().sort().to_list()
    chosen = set(weights(market)["timestamp"].unique().to_list())
    return [i for i, t in enumerate(stamps) if t in chosen]


def mid(market: Market) -> int:
    """A bar in the middle of the run: the decision halfway through (its fills next bar)."""
    bars = decision_bars(market)
    return bars[len(bars) // 2] + 1


NO_FAULTS = Faults()


@cache
def fills(market: Market, faults: Faults = NO_FAULTS) -> pl.DataFrame:
    return Backtest(prices(market), weights(market), CASH, FEES, faults).run()


def first_changed(market: Market, faults: Faults, name: str) -> int | None:
    """The first bar whose fills the fault `name` changes among `faults` (None: none)."""
    joined = join_sides(fills(market, faults), fills(market, faults.without(name)),
                        Tolerance())
    differ = joined.filter(pl.col("divergent"))
    if not differ.height:
        return None
    stamps = prices(market)["timestamp"].unique().sort().to_list()
    return stamps.index(differ["timestamp"].min())


def analyzed(market: Market, faults: Faults, with_weights: bool = True):
    config = BacktestConfig(fees=FEES, initial_cash=CASH)
    return analyze(Side(fills(market), rules=rules_for(config), name="A"),
                   Side(fills(market, faults), name="foreign engine"), prices(market),
                   weights(market) if with_weights else None, CASH)


def problems(market: Market, faults: Faults, analysis) -> list[str]:
    """Where the analysis departs from the truth about `faults` (empty: it is right)."""
    bar_of = {t: i for i, t in enumerate(prices(market)["timestamp"].unique().sort().to_list())}
    traced = [(f, first_changed(market, faults, f.name)) for f in faults.faults]
    return problems_in(analysis.summary, [(f, first) for f, first in traced
                                          if first is not None], CAUSES_OF, bar_of)


def _named(analysis) -> list[tuple[str, str]]:
    return [(f["cause"], f["what"]) for f in analysis.summary["faults"]]


# The engine itself


@pytest.mark.parametrize("market", [TIGHT, SPARE], ids=["tight", "spare"])
def test_the_bug_free_engine_fills_as_run_backtest_does(market):
    ours = fills(market).sort("timestamp", "asset")
    config = BacktestConfig(fees=FEES, initial_cash=CASH)
    theirs = run_backtest(prices(market), weights(market), config).fills.select(
        ours.columns).sort("timestamp", "asset")
    assert ours.height == theirs.height > 0
    assert ours.select("timestamp", "asset").equals(theirs.select("timestamp", "asset"))
    for column in ("quantity", "price", "fee"):
        a, b = ours[column].to_numpy(), theirs[column].to_numpy()
        assert (abs(a - b) <= 1e-9 * abs(b).clip(min=1e-3)).all(), column


@pytest.mark.parametrize("name", [n for n in CAUSES_OF if n != "lost_order"])
def test_each_fault_changes_the_fills_from_its_switch_on(name):
    since = mid(TIGHT)
    faults = Faults((Fault(name, since, PARAMS.get(name)),))
    first = first_changed(TIGHT, faults, name)
    market = TIGHT
    if first is None:  # a fault that needs another market to show (see SINGLE)
        market = SPARE if name != "positions_from_order" else TIGHT
        faults = Faults((Fault(name, 0, PARAMS.get(name)),))
        first = first_changed(market, faults, name)
    assert first is not None and first >= faults.faults[0].since
    before = prices(market)["timestamp"].unique().sort()[first]
    clean = fills(market).filter(pl.col("timestamp") < before)
    assert fills(market, faults).filter(pl.col("timestamp") < before).equals(clean)


# One fault at a time, from the start and from mid-run

PARAMS = {"stop_loss": 0.03, "lost_order": 2}


def single(name: str, onset: str, market: Market = TIGHT) -> Faults:
    since = 0 if onset == "start" else mid(market)
    if name == "lost_order" and onset == "start":
        since = decision_bars(market)[3] + 1  # a buy lost in the fourth batch
    return Faults((Fault(name, since, PARAMS.get(name)),))


IN_VOCABULARY = [n for n, causes in CAUSES_OF.items() if causes]
OUTSIDE = [n for n, causes in CAUSES_OF.items() if not causes]


ONSETS = ["start", pytest.param("mid-run", marks=pytest.mark.slow)]  # the fast tier: starts


@pytest.mark.parametrize("onset", ONSETS)
@pytest.mark.parametrize("name", IN_VOCABULARY)
def test_a_wiring_fault_is_named_alone_at_its_onset_and_explains_the_gap(name, onset):
    faults = single(name, onset)
    analysis = analyzed(TIGHT, faults)
    assert problems(TIGHT, faults, analysis) == [], _named(analysis)
    assert analysis.summary["verdict"] == "explained"
    assert len(analysis.summary["faults"]) == 1, _named(analysis)


@pytest.mark.slow
@pytest.mark.parametrize("market", [TIGHT, SPARE], ids=["tight", "spare"])
@pytest.mark.parametrize("onset", ["start", "mid-run"])
@pytest.mark.parametrize("name", IN_VOCABULARY)
def test_without_weights_and_with_cash_to_spare_the_same_faults_are_named(name, onset,
                                                                          market):
    faults = single(name, onset, market)
    for with_weights in (True, False):
        analysis = analyzed(market, faults, with_weights)
        assert problems(market, faults, analysis) == [], (with_weights, _named(analysis))


@pytest.mark.parametrize("onset", ["mid-run", pytest.param("start", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", [n if n == "lost_order" else pytest.param(
    n, marks=pytest.mark.slow) for n in OUTSIDE])
def test_a_fault_outside_the_vocabulary_is_unexplained_never_a_wrong_cause(name, onset):
    faults = single(name, onset)
    analysis = analyzed(TIGHT, faults)
    assert first_changed(TIGHT, faults, name) is not None
    assert analysis.summary["verdict"] == "unexplained"
    assert {f["cause"] for f in analysis.summary["faults"]} == {"unexplained"}


def test_cash_checked_against_the_days_copy_of_the_holdings_is_a_stale_balance():
    """The execution handler reads `current_holdings` as copied when the day began: every
    buy of a batch is checked against the cash before its sells, which is neither the
    cash at the first buy nor buys run before sells."""
    analysis = analyzed(TIGHT, single("day_copy", "start"))
    assert _named(analysis) == [("cash_limit",
                                 "each buy checked against the cash before the batch")]


@pytest.mark.parametrize("tax, multiple", [(1.0, "2"), (0.5, "1.5")])
@pytest.mark.parametrize("market", [TIGHT, SPARE], ids=["tight", "spare"])
def test_a_log_that_adds_a_tax_already_charged_is_one_logging_fault_carrying_the_gap(
        market, tax, multiple):
    """From mid-run the log's fee is the commission plus a tax the commission already
    includes (the tax the whole commission, or half of it): twice or 1.5 times what cash
    paid. The fee model the log shows is that logging, not another fee model beside it,
    and the cash the engine sized from paid A's 0.1% (where buys are shrunk to the cash,
    at 0.1%)."""
    faults = Faults((Fault("fee_logged_twice", mid(market), tax),))
    analysis = analyzed(market, faults)
    assert analysis.summary["verdict"] == "explained"
    assert [(f["cause"], f["what"].split(" since ")[0]) for f in analysis.summary["faults"]] \
        == [("fee", f"fees logged at {multiple}× what cash paid")]
    assert analysis.summary["faults"][0]["share"] == pytest.approx(1.0)
    assert problems(market, faults, analysis) == []


@pytest.mark.parametrize("rate, words", [(2.0, "0.2000%"), (1.5, "0.1500%")])
@pytest.mark.parametrize("market", [TIGHT, SPARE], ids=["tight", "spare"])
def test_a_fee_charged_at_a_multiple_of_the_rate_is_another_fee_model_not_a_logging_fault(
        market, rate, words):
    """The negative control: the same logged fees, really paid (a 0.2% or 0.15% engine),
    are a fee model of their own."""
    analysis = analyze(Side(fills(market), rules=rules_for(BacktestConfig(
        fees=FEES, initial_cash=CASH)), name="A"), Side(Backtest(
            prices(market), weights(market), CASH, rate * FEES).run(), name="B"),
        prices(market), weights(market), CASH)
    assert analysis.summary["verdict"] == "explained"
    assert _named(analysis) == [("fee", f"fees {words} of value instead of 0.1000% of value")]


def test_a_per_share_commission_switched_on_mid_run_is_one_fee_model():
    """$0.005 a share with a $1 minimum from mid-run: a bar whose orders are mostly small
    pays $1 on most fills, yet its fee model is the per-share one with its minimum."""
    analysis = analyzed(TIGHT, single("per_share_fee", "mid-run"))
    assert _named(analysis) == [("fee", "fees 0.005 a share (min 1) instead of 0.1000% of "
                                 "value")]


@pytest.mark.parametrize("market", [TIGHT, SPARE], ids=["tight", "spare"])
def test_a_strategys_stop_at_the_next_open_is_a_rule_also_where_a_rebalance_follows_it(
        market):
    """The strategy sells a whole position at the next open once a close is 3% under its
    entry; where that open is a rebalance's, the exit comes first and the rebalance is
    sized from the book it left (its value less the exit's fee)."""
    faults = single("stop_loss", "start", market)
    run = Backtest(prices(market), weights(market), CASH, FEES, faults)
    run.run()
    rebalances = {bar + 1 for bar in decision_bars(market)}
    assert any(bar in rebalances for bar, _ in run.exits)
    analysis = analyzed(market, faults)
    assert _named(analysis) == [("exit_rule", "exits at 3.0% below the entry's fill price, "
                                 "at the next open once a close passed it: a stop-loss A "
                                 "does not have")]
    assert problems(market, faults, analysis) == []


# Two or three at once

COMBINATIONS = {
    "booked twice from mid-run, a per-share commission from the start": (
        ("fill_twice", "mid"), ("per_share_fee", 0)),
    "the whole target, then a stale cash check": (("whole_target", 0), ("day_copy", "mid")),
    "sized at yesterday's close, fees twice, whole shares late": (
        ("yesterday_close", 0), ("fees_twice", "mid"), ("whole_shares", "late")),
    "filled at the signal's close from mid-run beside a double booking": (
        ("same_close", "mid"), ("fill_twice", 0)),
    "a sizing bias beside whole shares": (("sizing_bias", "mid"), ("whole_shares", 0)),
    "a lost buy beside fees charged twice": (("lost_order", "mid"), ("fees_twice", 0)),
    "a stop, then fees charged twice": (("stop_loss", 0), ("fees_twice", "mid")),
    "whole shares, then a stop": (("whole_shares", 0), ("stop_loss", "mid")),
}


def combined(market: Market, parts) -> Faults:
    at = {"early": decision_bars(market)[3] + 1, "mid": mid(market),
          "late": decision_bars(market)[-8] + 1}
    return Faults(tuple(Fault(name, at.get(since, since), PARAMS.get(name))
                        for name, since in parts))


@pytest.mark.slow
@pytest.mark.parametrize("market", [TIGHT, SPARE], ids=["tight", "spare"])
@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_faults_together_are_each_named_at_their_onset(name, market):
    faults = combined(market, COMBINATIONS[name])
    analysis = analyzed(market, faults)
    assert problems(market, faults, analysis) == [], _named(analysis)


# Its log in a form of its own, through the command line


def partial_fill_log(frame: pl.DataFrame) -> pl.DataFrame:
    """The engine's fills as a broker reports executions: each order in two partial fills
    (60% then 40%, the commission split alike), an unsigned quantity beside a BUY/SELL
    side, the order's id on both rows."""
    rows = []
    for order, (t, asset, q, p, f) in enumerate(frame.iter_rows()):
        for part in (0.6, 0.4):
            rows.append((t.strftime("%Y-%m-%d 09:30:00"), asset, "BUY" if q > 0 else "SELL",
                         abs(q) * part, p, f * part, f"O{order}"))
    return pl.DataFrame(rows, schema=["When", "Ticker", "Side", "Qty", "Px", "Commission",
                                      "OrderId"], orient="row")


@pytest.mark.slow
def test_a_partial_fill_log_with_a_side_column_is_diagnosed_through_the_command_line(
        tmp_path):
    """`tradegap explain` reads the log with `--columns` (a side column signing unsigned
    quantities) and `--partials sum` (an order's partial fills on a bar summed) and says
    what the same fills in our own format say."""
    faults = single("fees_twice", "mid-run")
    assert_explained_as_directly(tmp_path, partial_fill_log(fills(TIGHT, faults)), weights(TIGHT),
                                 analyzed(TIGHT, faults).summary, CASH, FEES,
                                 "--partials", "sum", "--columns",
                                 "timestamp=When,asset=Ticker,side=Side,quantity=Qty,price=Px,"
                                 "fee=Commission,order=OrderId")
