"""The trade-gap corpus (tests/gap_corpus): the analyzer against what is true about each pair.

`test_the_analyzer_finds_what_is_true_about[pair]` asserts every manifest field of a pair,
with and without the weights as the manifest says: the verdict, the causes of the first
divergent key, the first fault's onset, the set of fault causes, and for explained pairs
an attribution that sums to the gap and leaves at most 1% of it unexplained. The other
tests check the corpus itself: the loop without faults is vectorbt, the manifest's first
causes are what the injected faults make, and the peers' own records show the causes the
manifest gives them. When the whole corpus ran, the results table is written to
`out/gap_corpus.md` (also `python -m tests.gap_corpus`).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.core.profiles import PROFILES
from tests.gap_corpus import build, engines, markets, run, truth
from tests.gap_corpus.manifest import BY_NAME, PAIRS
from tests.gap_corpus.run import Outcome

pytestmark = [pytest.mark.corpus, pytest.mark.peers, pytest.mark.slow]

TABLE = Path(__file__).resolve().parents[1] / "out" / "gap_corpus.md"
RAN: list[Outcome] = []

LOOP_PAIRS = [p.name for p in PAIRS if p.source == "loop"]
USED_MARKETS = sorted({p.market for p in PAIRS})
ENGINE_MARKETS = sorted({p.market for p in PAIRS if p.a == "engine"})


@pytest.fixture(scope="module", autouse=True)
def results_table():
    """Write the table once every pair of the corpus has been analyzed in this run."""
    yield
    if {o.name for o in RAN} == set(BY_NAME):
        TABLE.parent.mkdir(parents=True, exist_ok=True)
        TABLE.write_text(run.table(RAN))


@pytest.mark.parametrize("name", [p.name for p in PAIRS])
def test_the_analyzer_finds_what_is_true_about(name):
    pair = BY_NAME[name]
    outcomes = [run.outcome(name, mode) for mode in pair.modes]
    RAN.extend(outcomes)
    wrong = [o for o in outcomes if o.problems]
    assert not wrong, "\n".join(_explain(pair, o) for o in wrong)


def _explain(pair, o: Outcome) -> str:
    lines = [f"{pair.name} ({o.mode}; {pair.fault}):", *(f"  {p}" for p in o.problems),
             "  faults found:", *(f"    {line}" for line in run.fault_lines(o))]
    return "\n".join(lines)


# The corpus itself


def test_the_loop_and_its_faults_import_nothing_from_the_engine():
    """The loop is an independent implementation: no engine, no reference, no analyzer."""
    for module in ("loop.py", "faults.py"):
        tree = ast.parse((Path(build.__file__).parent / module).read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m and m.split(".")[0] == "engine"], (module, imported)


@pytest.mark.parametrize("market", USED_MARKETS)
def test_the_loop_without_faults_is_vectorbt(market):
    """Every loop pair's B differs from A only by its faults."""
    assert truth.divergent(engines.loop(market), engines.vectorbt(market)).height == 0


@pytest.mark.parametrize("market", ENGINE_MARKETS)
def test_the_engine_is_vectorbt_where_it_is_side_a(market):
    assert truth.divergent(engines.engine(market), engines.vectorbt(market)).height == 0


@pytest.mark.parametrize("name", LOOP_PAIRS)
def test_the_manifest_first_cause_is_what_the_faults_make(name):
    """Each fault changes B, and the faults that alone change B's first divergent fill are
    the manifest's first causes."""
    assert all(t is not None for t in build.fault_onsets(name)), build.fault_onsets(name)
    assert build.first_cause_by_construction(name) == set(BY_NAME[name].first_cause)


@pytest.mark.parametrize("name", [p.name for p in PAIRS if p.source == "backtrader"])
def test_the_manifest_gives_backtrader_the_causes_its_records_show(name):
    """cash_limit iff backtrader refused orders (margin); never sequencing, because its
    submission order changes no fill here: the engine's backtrader profile (equal to real
    backtrader, fill for fill) gives the same fills when it sequences by order value."""
    pair = BY_NAME[name]
    real = engines.backtrader(pair.market)
    assert (real.rejections.height > 0) == ("cash_limit" in pair.causes)
    assert "sequencing" not in pair.causes
    config = BacktestConfig.for_profile("backtrader", initial_cash=markets.INITIAL_CASH,
                                        fees=markets.MARKETS[pair.market].fees)
    prices, weights = markets.prices(pair.market), markets.weights(pair.market)
    own = run_backtest(prices, weights, config).fills.select(engines.FILL_COLUMNS)
    by_value = run_backtest(prices, weights, _ValueSequenced(**config.to_dict())).fills
    assert truth.divergent(own, real.fills.select(engines.FILL_COLUMNS)).height == 0
    assert truth.divergent(own, by_value.select(engines.FILL_COLUMNS)).height == 0


class _ValueSequenced(BacktestConfig):
    """A config whose profile executes a batch by order value instead of submission."""

    @property
    def semantics(self):
        return replace(PROFILES[self.profile], sequence="auto")


@pytest.mark.parametrize("name", [p.name for p in PAIRS if p.source == "zipline"])
def test_the_manifest_gives_zipline_the_causes_its_records_show(name):
    """cash_limit iff zipline's cash went negative; volume_limit iff an order filled over
    several bars, at the first key iff that key's order did."""
    pair = BY_NAME[name]
    fills = engines.zipline(pair.market, pair.zipline_costs).sort("timestamp", maintain_order=True)
    spent = (pl.col("quantity") * pl.col("price") + pl.col("fee")).cum_sum()
    lowest = fills.select(markets.INITIAL_CASH - spent).min().item()
    assert (lowest < -1e-6) == ("cash_limit" in pair.causes)
    bars = fills.group_by("order_id").agg(pl.col("timestamp").n_unique().alias("bars"))
    split = set(bars.filter(pl.col("bars") > 1)["order_id"].to_list())
    assert bool(split) == ("volume_limit" in pair.causes)
    key = truth.first_key(build.fills_a(pair), fills.select(engines.FILL_COLUMNS))
    first = fills.filter((pl.col("timestamp") == key[0]) & (pl.col("asset") == key[1]))
    assert bool(set(first["order_id"].to_list()) & split) == ("volume_limit" in pair.first_cause)


def test_the_corpus_has_every_fault_in_several_forms_and_negative_controls():
    assert len(PAIRS) >= 45
    forms: dict[str, set[str]] = {}
    for pair in PAIRS:
        for cause in pair.causes:
            forms.setdefault(cause, set()).add(pair.form)
    for cause in ("duplicate_fill", "accumulation", "stale_position", "timing", "sequencing",
                  "sizing_basis", "fee", "fill_price", "rounding"):
        assert len(forms[cause]) >= 3, (cause, forms[cause])
    negatives = [p for p in PAIRS if p.verdict == "unexplained"]
    assert len(negatives) >= 4
    assert sum(p.weights == "both" for p in PAIRS) >= len(PAIRS) // 2
    assert any(markets.MARKETS[p.market].gaps for p in PAIRS)
