"""The gap analysis on an engine with an algorithm API (tests/algo_engine.py).

The engine is written as zipline/backtrader-like backtesters are (an algorithm's
`handle_data`, a `context.portfolio` with positions, a blotter of open orders netted by
`order_target_percent`, a commission model, a ledger, an optional risk manager); bug-free
it fills as `engine.run_backtest` does. Each of its wiring faults, from the start or from
mid-run, alone or two at once, on two markets, is judged as the other engines' are: the
analysis names only the planted faults' causes (or `propagated`), each at an onset between
the fault's switch and the first fill it changed; the verdict is `explained` when every
planted fault is in the vocabulary and `unexplained` when one outside it changed a fill;
the report's first sentence names root causes only. `bench/gap_algo.py` prints every case.
"""

from __future__ import annotations

from functools import cache

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import momentum_scores
from engine.gap.analyze import Side, analyze
from engine.gap.report import headline
from engine.reference import rules_for
from engine.research.weights import top_k_weights
from engine.results.compare import Tolerance, join_sides
from tests.algo_engine import AlgoBacktest, Fault, Faults, TopKMomentum
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
    "sell_twice": ("duplicate_fill",),
    "cost_value": ("sizing_basis",),
    "stale_mark": ("sizing_basis",),
    "no_netting": ("duplicate_fill",),
    "fee_drift": ("sizing_basis",),
    "same_close": ("look_ahead",),
    "take_profit": ("exit_rule",),
    "trailing_stop": ("exit_rule",),
    "time_exit": ("exit_rule",),
    "lot10": ("rounding",),
    "cache_alternate": ("stale_position", "belief_drift"),
    "dropped_order": (),
    "oversize": (),
}
NO_FAULTS = Faults()
PARAMS = {"take_profit": 0.08, "trailing_stop": 0.05, "time_exit": 7, "dropped_order": 2}


MARKETS = {"tight": TIGHT, "spare": SPARE}


def stamps(market: Market) -> list:
    return prices(market)["timestamp"].unique().sort().to_list()


def backtest(market: Market, faults: Faults) -> AlgoBacktest:
    algorithm = TopKMomentum(market.k, market.every, invested=market.invested)
    return AlgoBacktest(prices(market), algorithm, CASH, FEES, faults)


@cache
def run(market: Market, faults: Faults = NO_FAULTS) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The fills and the weights the algorithm decided."""
    engine = backtest(market, faults)
    fills = engine.run()
    return fills, engine.weights()


def fills(market: Market, faults: Faults = NO_FAULTS) -> pl.DataFrame:
    return run(market, faults)[0]


def weights(market: Market) -> pl.DataFrame:
    return run(market)[1]


def decision_bars(market: Market) -> list[int]:
    chosen = set(weights(market)["timestamp"].unique().to_list())
    return [i for i, t in enumerate(stamps(market)) if t in chosen]


def at(market: Market, when: str | int) -> int:
    """A switch-on bar: 0, `early` (the fourth batch), `mid` (the batch halfway through)."""
    bars = decision_bars(market)
    return {"early": bars[3] + 1, "mid": bars[len(bars) // 2] + 1}.get(when, when)


def planted(market: Market, parts) -> Faults:
    return Faults(tuple(Fault(name, at(market, when), PARAMS.get(name))
                        for name, when in parts))


def first_changed(market: Market, faults: Faults, name: str) -> int | None:
    """The first bar whose fills the fault `name` changes among `faults` (None: none)."""
    joined = join_sides(fills(market, faults), fills(market, faults.without(name)),
                        Tolerance())
    differ = joined.filter(pl.col("divergent"))
    if not differ.height:
        return None
    return stamps(market).index(differ["timestamp"].min())


def analyzed(market: Market, faults: Faults, with_weights: bool = True):
    config = BacktestConfig(fees=FEES, initial_cash=CASH)
    return analyze(Side(fills(market), rules=rules_for(config), name="A"),
                   Side(fills(market, faults), name="algorithm engine"), prices(market),
                   weights(market) if with_weights else None, CASH)


def problems(market: Market, faults: Faults, analysis) -> list[str]:
    """Where the analysis departs from the truth about `faults` (empty: it is right)."""
    bar_of = {t: i for i, t in enumerate(stamps(market))}
    traced = [(f, first_changed(market, faults, f.name)) for f in faults.faults]
    return problems_in(analysis.summary, [(f, first) for f, first in traced
                                          if first is not None], CAUSES_OF, bar_of)


# Every case: one fault from the start or mid-run, and pairs; each on both markets.
SINGLES = {f"{name} from {when}": ((name, 0 if when == "start" else "mid"),)
           for name in CAUSES_OF for when in ("start", "mid")}
SINGLES["dropped_order from start"] = (("dropped_order", "early"),)
PAIRS = {
    "sells booked twice from mid-run beside lots of 10": (("sell_twice", "mid"),
                                                          ("lot10", 0)),
    "fees left in the ledger, then a stale mark": (("fee_drift", 0), ("stale_mark", "mid")),
    "a take-profit, then value from cost basis": (("take_profit", 0), ("cost_value", "mid")),
    "a trailing stop beside orders not netted": (("trailing_stop", 0), ("no_netting", "mid")),
    "a time exit beside a cache refreshed every other batch": (("time_exit", 0),
                                                               ("cache_alternate", "mid")),
    "filled at its own close from mid-run, lots of 10": (("same_close", "mid"), ("lot10", 0)),
    "an oversized asset beside a stale mark": (("oversize", "mid"), ("stale_mark", 0)),
    "a dropped order beside fees left in the ledger": (("dropped_order", "mid"),
                                                       ("fee_drift", 0)),
}
CASES = {**SINGLES, **PAIRS}

# Cases the analysis still gets wrong, (market, case, with the weights): left out of the
# passing tests; bench/gap_algo.py lists them with what the analysis says.
FAILING: set[tuple[str, str, bool]] = {
    (market, case, with_weights) for with_weights in (True, False) for market, case in (
        # the book valued at each position's average cost: no valuation of the vocabulary
        ("tight", "cost_value from start"), ("tight", "cost_value from mid"),
        ("spare", "cost_value from start"), ("spare", "cost_value from mid"),
        ("tight", "a take-profit, then value from cost basis"),
        ("spare", "a take-profit, then value from cost basis"),
        # one exit at the next open, the other inside a rebalance: no rule is fitted on one
        ("tight", "trailing_stop from mid"),
        # exits sized from a stale cache close part of a position: no rule fits them all
        ("tight", "a time exit beside a cache refreshed every other batch"),
    )}


def passing(with_weights: bool = True) -> list:
    return [pytest.param(m, c, id=f"{m}: {c}", marks=[] if c.endswith("from start")
                         and m == "tight" and with_weights else [pytest.mark.slow])
            for m in MARKETS for c in CASES if (m, c, with_weights) not in FAILING]


# The engine itself


@pytest.mark.parametrize("market", list(MARKETS.values()), ids=list(MARKETS))
def test_the_bug_free_engine_fills_as_run_backtest_does(market):
    ours = fills(market).sort("timestamp", "asset")
    chosen = top_k_weights(momentum_scores(prices(market)), k=market.k, every=market.every)
    assert weights(market).equals(chosen.with_columns(pl.col("weight") * market.invested))
    config = BacktestConfig(fees=FEES, initial_cash=CASH)
    theirs = run_backtest(prices(market), weights(market), config).fills.select(
        ours.columns).sort("timestamp", "asset")
    assert ours.height == theirs.height > 0
    assert ours.select("timestamp", "asset").equals(theirs.select("timestamp", "asset"))
    for column in ("quantity", "price", "fee"):
        a, b = ours[column].to_numpy(), theirs[column].to_numpy()
        assert (abs(a - b) <= 1e-9 * abs(b).clip(min=1e-3)).all(), column


@pytest.mark.parametrize("name", list(CAUSES_OF))
def test_each_fault_changes_the_fills_only_from_its_switch_on(name):
    faults = planted(TIGHT, SINGLES[f"{name} from mid"])
    first = first_changed(TIGHT, faults, name)
    assert first is not None and first >= faults.faults[0].since
    before = stamps(TIGHT)[first]
    clean = fills(TIGHT).filter(pl.col("timestamp") < before)
    assert fills(TIGHT, faults).filter(pl.col("timestamp") < before).equals(clean)


# The analysis, judged


@pytest.mark.parametrize(("market", "case"), passing())
def test_the_planted_faults_are_named_at_their_onsets(market, case):
    faults = planted(MARKETS[market], CASES[case])
    analysis = analyzed(MARKETS[market], faults)
    assert problems(MARKETS[market], faults, analysis) == [], headline(analysis.summary)


@pytest.mark.slow
@pytest.mark.parametrize(("market", "case"), passing(False))
def test_without_weights_the_same_faults_are_named(market, case):
    faults = planted(MARKETS[market], CASES[case])
    analysis = analyzed(MARKETS[market], faults, with_weights=False)
    assert problems(MARKETS[market], faults, analysis) == [], headline(analysis.summary)


# Its log as zipline writes transactions, through the command line


def transactions_log(frame: pl.DataFrame) -> pl.DataFrame:
    """The engine's fills as a zipline-like transactions table: `dt` with a market-open
    time of day, `sid`, signed `amount`, `price`, `commission`, an `order_id`."""
    return frame.select(
        pl.col("timestamp").dt.strftime("%Y-%m-%d 14:31:00").alias("dt"),
        pl.col("asset").alias("sid"), pl.col("quantity").alias("amount"), "price",
        pl.col("fee").alias("commission"),
        pl.format("o{}", pl.int_range(pl.len())).alias("order_id"))


@pytest.mark.slow
def test_a_transactions_log_is_diagnosed_through_the_command_line(tmp_path):
    """`tradegap explain` reads the log with `--columns` and says what the same fills in
    our own format say: the sells booked twice from mid-run, at the same onset."""
    faults = planted(TIGHT, SINGLES["sell_twice from mid"])
    assert_explained_as_directly(tmp_path, transactions_log(fills(TIGHT, faults)), weights(TIGHT),
                                 analyzed(TIGHT, faults).summary, CASH, FEES,
                                 "--columns", "timestamp=dt,asset=sid,quantity=amount,"
                                 "price=price,fee=commission,order=order_id")
