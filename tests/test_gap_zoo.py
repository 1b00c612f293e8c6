"""The gap zoo: the analyzer must name the failure of each broken engine (tests/gap_zoo).

A is the real engine on the base config; B is one variant. Each side's final equity is
rebuilt from its fills (equity=None), except where the variant's fills cannot tell it: with
fees left out of cash, the fills still carry their fees, so B passes its own equity curve.
For every variant: the first divergence has the expected cause, every root difference has
an expected cause and every other divergent fill is `propagated`, the expected causes carry
the (material) final-equity gap to within 1 %, and the verdict is `explained`.

Causes follow `engine.gap.semantics.CAUSE_OF`: a different fill time (`next_close` or
`same_close` against `next_open`) is `timing`, slippage is `fill_price`, fees left out of
cash are `sizing_basis`. The weights sum to 1, so cash is tight and every batch's last buy
is shrunk; the `*_with_cash_to_spare` cases run the same variant on weights summing to 0.3,
which separates a failure of the cash check from one of the bookkeeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import polars as pl
import pytest

import engine.core.book
import engine.core.execution
import engine.core.ledger
import engine.core.loop
from engine import BacktestConfig
from engine.data.synthetic import generate_market, momentum_scores
from engine.gap.analyze import GapAnalysis, Side, analyze
from engine.gap.report import WHAT_WENT_WRONG, render_markdown
from engine.research.weights import top_k_weights as momentum_top_k
from tests import builders
from tests.gap_zoo import (
    Run,
    accumulation,
    buys_first,
    duplicate_fills,
    fees_out_of_cash,
    run_engine,
    same_bar,
    stale_position,
)
from tests.gap_zoo.honest import with_config

N_ASSETS, N_BARS, K, EVERY, SEED = 40, 200, 10, 5, 3
BASE = BacktestConfig(fees=0.001)
EXPLAINED = 0.99
MATERIAL = 1e-5  # of the initial cash: a gap below this is noise, not a finding


@dataclass(frozen=True)
class Case:
    """One zoo variant and the causes the analyzer must name for it."""

    run: Run
    causes: tuple[str, ...]
    base: BacktestConfig = BASE
    own_equity: bool = False  # B's fills cannot tell its equity: pass B's equity curve
    weight_scale: float = 1.0  # 1: the weights sum to 1 and cash is tight


CASES = {
    "duplicate_fills": Case(duplicate_fills.run, ("duplicate_fill",)),
    "duplicate_fills_with_cash_to_spare": Case(duplicate_fills.run, ("duplicate_fill",),
                                               weight_scale=0.3),
    "accumulation": Case(accumulation.run, ("accumulation",)),
    "stale_position": Case(stale_position.run, ("stale_position",)),
    "same_bar": Case(same_bar.run, ("timing",)),
    "fees_out_of_cash": Case(fees_out_of_cash.run, ("sizing_basis",), own_equity=True),
    "fees_out_of_cash_with_cash_to_spare": Case(fees_out_of_cash.run, ("sizing_basis",),
                                                own_equity=True, weight_scale=0.3),
    "next_close": Case(with_config(fill="next_close"), ("timing",)),
    "integer_shares": Case(with_config(shares="integer"), ("rounding",),
                           base=BASE.with_(initial_cash=20_000.0)),
    "no_fees": Case(with_config(fees=0.0), ("fee",)),
    "slippage": Case(with_config(slippage=0.001), ("fill_price",)),
    "buys_first": Case(buys_first.run, ("sequencing",)),
}


@cache
def universe(weight_scale: float = 1.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random-walk bars and equal top-k target weights, rebalanced every few bars."""
    prices, _, _ = builders.random_universe(N_ASSETS, N_BARS, seed=SEED)
    weights = builders.top_k_weights(N_ASSETS, N_BARS, K, EVERY, seed=SEED)
    return prices, weights.with_columns(pl.col("weight") * weight_scale)


@cache
def sides(name: str) -> tuple[tuple[pl.DataFrame, pl.DataFrame], ...]:
    """(fills, equity) of A, the engine, and of B, the variant."""
    case = CASES[name]
    prices, weights = universe(case.weight_scale)
    return run_engine(prices, weights, case.base), case.run(prices, weights, case.base)


@cache
def analysis(name: str) -> GapAnalysis:
    """B against A, each side's equity rebuilt from its fills unless the case says not."""
    case = CASES[name]
    prices, weights = universe(case.weight_scale)
    (fills_a, _), (fills_b, equity_b) = sides(name)
    return analyze(Side(fills_a), Side(fills_b, equity_b if case.own_equity else None),
                   prices, weights, case.base.initial_cash)


def assert_roots(result: GapAnalysis, causes: tuple[str, ...], exactly: bool = False) -> None:
    """Every root has one of `causes` (all of them if `exactly`); the rest is propagated."""
    divergent = result.gap_fills.filter(pl.col("divergent"))
    roots = divergent.filter(pl.col("root"))
    found = set(roots["cause"].unique().to_list())
    assert roots.height, "no root difference found"
    assert found == set(causes) if exactly else found <= set(causes), result.summary["causes"]
    others = divergent.filter(~pl.col("root"))["cause"].unique().to_list()
    assert set(others) <= {"propagated"}, result.summary["causes"]


def assert_attributed(result: GapAnalysis, causes: tuple[str, ...], initial_cash: float):
    """The gap is material and the expected causes carry all but 1 % of it."""
    summary = result.summary
    gap = summary["final_equity"]["gap"]
    attribution = summary["attribution"]
    assert abs(gap) > MATERIAL * initial_cash, f"gap {gap} is not material"
    on_causes = sum(attribution.get(cause, 0.0) for cause in causes)
    assert abs(gap - on_causes) <= (1 - EXPLAINED) * abs(gap), attribution
    assert abs(attribution.get("unexplained", 0.0)) <= (1 - EXPLAINED) * abs(gap), attribution


@pytest.mark.parametrize("name", CASES)
def test_the_first_divergence_names_the_failure(name):
    first = analysis(name).summary["first_divergence"]
    assert first is not None, "the variant did not change any fill"
    assert first["cause"] in CASES[name].causes, first


@pytest.mark.parametrize("name", CASES)
def test_every_root_difference_has_the_failures_cause_and_the_rest_is_propagated(name):
    assert_roots(analysis(name), CASES[name].causes)


@pytest.mark.parametrize("name", CASES)
def test_the_failures_causes_carry_99_percent_of_the_equity_gap(name):
    assert_attributed(analysis(name), CASES[name].causes, CASES[name].base.initial_cash)


@pytest.mark.parametrize("name", CASES)
def test_the_verdict_is_explained(name):
    summary = analysis(name).summary
    assert summary["verdict"] == "explained", (summary["root_causes"], summary["attribution"])


# The variants really are what they claim (independent of the analyzer).


def batches(fills: pl.DataFrame) -> list[pl.DataFrame]:
    return fills.partition_by("timestamp", maintain_order=True)


def test_duplicate_fills_log_every_fill_twice_and_book_it_twice():
    (fills_a, _), (fills_b, equity_b) = sides("duplicate_fills")
    first_a, first_b = batches(fills_a)[0], batches(fills_b)[0]
    assert first_b.drop("order_id").equals(
        first_a.drop("order_id").select(pl.all().repeat_by(2).explode()))
    spent = float((first_b["quantity"] * first_b["price"] + first_b["fee"]).sum())
    assert equity_b["cash"][1] == pytest.approx(BASE.initial_cash - spent, rel=1e-12)
    assert equity_b["cash"][1] < 0, "the second booking overdraws the cash"


def test_accumulation_trades_targets_so_it_never_sells():
    (fills_a, _), (fills_b, _) = sides("accumulation")
    assert (fills_a["quantity"] < 0).any()
    assert not (fills_b["quantity"] < 0).any()


def test_stale_position_sizes_the_second_batch_from_before_the_first():
    (fills_a, _), (fills_b, _) = sides("stale_position")
    first_a, second_a = batches(fills_a)[:2]
    assert batches(fills_b)[0].equals(first_a)
    # Sized from no position: the sells of the second batch are no-ops and its buys find
    # the cash spent, so nothing fills; the third batch then nets a one-batch-old book.
    assert second_a["timestamp"][0] not in fills_b["timestamp"]
    assert fills_b["timestamp"].n_unique() == fills_a["timestamp"].n_unique() - 1


def test_same_bar_fills_at_the_decision_close():
    prices, weights = universe()
    _, (fills_b, _) = sides("same_bar")
    decisions = weights["timestamp"].unique().implode()
    assert fills_b["timestamp"].is_in(decisions).all()
    at = fills_b.join(prices, on=["timestamp", "asset"])
    assert (at["price"] == at["close"]).all()


def test_fees_out_of_cash_fills_carry_fees_that_cash_never_pays():
    _, (fills_b, equity_b) = sides("fees_out_of_cash")
    assert (fills_b["fee"] > 0).all()
    flows = float((fills_b["quantity"] * fills_b["price"]).sum())
    assert equity_b["cash"][-1] == pytest.approx(BASE.initial_cash - flows, rel=1e-9)


def test_buys_first_executes_every_batchs_buys_before_its_sells():
    (fills_a, _), (fills_b, _) = sides("buys_first")
    assert all(batch["quantity"].gt(0).is_sorted() for batch in batches(fills_a))
    assert all(batch["quantity"].lt(0).is_sorted() for batch in batches(fills_b))


def test_the_zoo_patches_do_not_leak():
    for name in CASES:
        sides(name)
    assert engine.core.loop.Ledger is engine.core.ledger.Ledger
    assert engine.core.loop.execute_batch is engine.core.execution.execute_batch
    assert engine.core.loop.size_orders is engine.core.execution.size_orders
    assert engine.core.loop.OrderBook is engine.core.book.OrderBook


# The seed scenario: 500 assets, top 25 at 4 % every 21 bars, 239 rebalances, with fills
# applied twice and targets traded instead of deltas, together.

SEED_CAUSES = ("duplicate_fill", "accumulation")


@pytest.fixture(scope="module")
def seed_scenario() -> GapAnalysis:
    market = generate_market(n_assets=500, n_days=21 * 240, seed=7, gaps=False)
    weights = momentum_top_k(momentum_scores(market), k=25, every=21)
    fills_a, _ = run_engine(market, weights, BASE)
    with duplicate_fills.patched(), accumulation.patched():
        fills_b, _ = run_engine(market, weights, BASE)
    return analyze(Side(fills_a, name="engine"), Side(fills_b, name="broken"), market,
                   weights, BASE.initial_cash)


def test_seed_scenario_first_divergence_names_a_duplicate_or_an_accumulation(seed_scenario):
    first = seed_scenario.summary["first_divergence"]
    assert first["cause"] in SEED_CAUSES, first


def test_seed_scenario_roots_are_exactly_duplicates_and_accumulation(seed_scenario):
    assert_roots(seed_scenario, SEED_CAUSES, exactly=True)


def test_seed_scenario_gap_is_99_percent_duplicates_and_accumulation(seed_scenario):
    assert_attributed(seed_scenario, SEED_CAUSES, BASE.initial_cash)


def test_seed_scenario_verdict_is_explained(seed_scenario):
    summary = seed_scenario.summary
    assert summary["verdict"] == "explained", (summary["root_causes"], summary["attribution"])


def test_seed_scenario_report_opens_with_what_went_wrong(seed_scenario):
    text = render_markdown(seed_scenario)
    opening = next(line for line in text.splitlines() if line.strip() and line[0] != "#")
    headline = re.sub(r"^\*\*[^*]*\*\*\s*", "", opening)  # drop the bold verdict
    first_sentence = re.split(r"(?<=[.!?])\s", headline, maxsplit=1)[0]
    assert "twice" in first_sentence or "duplicate" in first_sentence, first_sentence
    assert "accumulat" in first_sentence or "whole targets" in first_sentence, first_sentence
    others = [phrase for cause, phrase in WHAT_WENT_WRONG.items() if cause not in SEED_CAUSES]
    assert not [phrase for phrase in others if phrase in first_sentence], first_sentence
