"""Trade-gap analysis speed: comparing 1,000,000 fills per side, diagnosing 240,000.

1. Compare: side A fills every asset on every bar of a generated market (1,000 assets ×
   1,000 bars); side B is A with half the fees, a price 0.1% off on 1% of fills, 1,000
   fills missing and 1,000 rows duplicated. Timed: the per-key join with tolerances and
   the robust price and fee models of both logs, the prices read into bars for them
   (`join_sides`, `Bars.from_frame`, `observe`).
2. Diagnose: top 50 of 500 assets by a score that changes every day, rebalanced daily
   over 2,520 days with 10 bp fees (about 240,000 fills per side). A is the engine; B is
   the reference with positions read one batch late from the middle of the run on (a
   fault that starts mid-run). Timed: the full `analyze` with the weights (both sides
   diagnosed bar by bar, labels, Shapley attribution).
3. The seed's scale: the seed-style event-driven engine (`engine/demo`) on 500 assets, the
   top 25 at 4% each, 239 monthly rebalances, with its wiring bugs on (a fill applied
   twice as it executes from the middle of the run, positions read from a cache one batch
   late, a cash check against the batch's first balance, a risk manager's 8% stops),
   against the reference. Timed: the full `analyze` with the weights; target under 20 s.

The analysis runs two independent parts at once where the machine has a second core (A's
diagnosis beside B's first pass, half of the attribution's replays: engine/gap/fork.py);
the CPU time printed counts both processes, and TRADEGAP_WORKERS=1 keeps it to one.

Usage: python bench/gap_speed.py [--fills 1000000] [--assets 500] [--days 2520]
       [--only compare|diagnose|seed]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import polars as pl

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market
from engine.gap.analyze import Side, analyze
from engine.gap.fork import cpu_time, workers
from engine.gap.observe import observe
from engine.reference import Bars, Simulation, Unrecorded, decisions_from_weights, rules_for
from engine.research.weights import top_k_weights
from engine.results.compare import Tolerance, join_sides


def fill_logs(n_fills: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    n_assets = 1000
    prices = generate_market(n_assets=n_assets, n_days=n_fills // n_assets, seed=seed,
                             gaps=False)
    rng = np.random.default_rng(seed)
    quantity = np.round(rng.normal(0, 100, prices.height), 2)
    quantity[quantity == 0] = 1.0
    a = prices.select("timestamp", "asset", pl.Series("quantity", quantity),
                      price=pl.col("open"), fee=pl.col("open") * np.abs(quantity) * 0.001)
    moved = rng.random(a.height) < 0.01
    b = a.with_columns(
        fee=pl.col("fee") * 0.5,
        price=pl.when(pl.Series(moved)).then(pl.col("price") * 1.001).otherwise(pl.col("price")),
    )
    drop = rng.choice(b.height, 1000, replace=False)
    b = b.filter(~pl.Series(np.isin(np.arange(b.height), drop)))
    dup = b.sample(1000, seed=seed)
    b = pl.concat([b, dup]).sort("timestamp", "asset", maintain_order=True)
    return prices, a, b


def compare(n_fills: int) -> None:
    prices, a, b = fill_logs(n_fills)
    start = time.perf_counter()
    joined = join_sides(a, b, Tolerance())
    bars = Bars.from_frame(prices)  # the prices as the models read them
    bar_of = {t: i for i, t in enumerate(bars.timestamps)}
    models = observe(a, bars, bar_of), observe(b, bars, bar_of)
    seconds = time.perf_counter() - start
    print(f"compare: A {a.height:,} fills, B {b.height:,}; "
          f"{int(joined['divergent'].sum()):,} keys differ; B's fees "
          f"{models[1].fee.fees:.4%} of value against A's {models[0].fee.fees:.4%}, "
          f"{sum(len(v) for v in models[1].overrides.values()):,} one-off prices")
    print(f"compare: {seconds:.2f} s ({a.height / seconds:,.0f} fills per second per side); "
          f"target: under 10 s")


def late_positions(prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig
                   ) -> pl.DataFrame:
    """B: the reference with positions read one batch late from the middle of the run on."""
    rules = rules_for(config)
    bars = Bars.from_frame(prices)
    half = len(bars.timestamps) // 2
    sim = Simulation(bars, decisions_from_weights(bars, weights),
                     lambda t: rules.with_(position_basis="stale") if t >= half else rules,
                     config.initial_cash, Unrecorded()).run()
    return pl.DataFrame([(bars.timestamps[t], s, q, p, f) for t, s, q, p, f, _ in sim.fills],
                        orient="row", schema={"timestamp": pl.Datetime("us"),
                                              "asset": pl.String, "quantity": pl.Float64,
                                              "price": pl.Float64, "fee": pl.Float64})


def peak_rss() -> str:
    """The process' peak resident memory so far (setup included), and its forked parts'."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    forked = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return f"{own:.2f} GB" + (f" (a forked part's: {forked:.2f} GB)" if forked else "")


def processes() -> str:
    return f"{workers()} process{'es' if workers() > 1 else ''} (TRADEGAP_WORKERS=1: one)"


def random_top(prices: pl.DataFrame) -> pl.DataFrame:
    """The top 50 by a score drawn anew every bar (the scores are not kept: the analysis
    reads the prices, the weights and the two logs, as `tradegap gap` does)."""
    rng = np.random.default_rng(1)
    scores = prices.select("timestamp", "asset").with_columns(
        score=pl.Series(rng.normal(size=prices.height)))
    return top_k_weights(scores, 50, 1)


def diagnose(n_assets: int, n_days: int) -> None:
    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=0, gaps=False)
    weights = random_top(prices)
    config = BacktestConfig(fees=0.001)
    a = run_backtest(prices, weights, config).fills
    rules = rules_for(config)
    b = late_positions(prices, weights, config)
    start, cpu = time.perf_counter(), cpu_time()
    analysis = analyze(Side(a, rules=rules, name="engine"), Side(b, name="late positions"),
                       prices, weights, config.initial_cash)
    seconds, cpu = time.perf_counter() - start, cpu_time() - cpu
    s = analysis.summary
    faults = "; ".join(f"{f['cause']} from {f['onset']}" for f in s["faults"])
    print(f"diagnose: {n_assets} assets × {n_days} days, A {a.height:,} fills, B {b.height:,}: "
          f"{s['verdict']}, {faults}")
    print(f"diagnose: {seconds:.1f} s ({cpu:.1f} s of CPU, {processes()}); peak RSS "
          f"{peak_rss()}; targets: under 30 s (240k fills), under 10 s at 500 × 2,520, "
          f"under 25 s and 3 GB at 2,000 × 5,040")


def seed_scale() -> None:
    from engine.data.synthetic import momentum_scores
    from engine.demo.engine import run_engine
    from engine.demo.wiring import Bug, Wiring
    from engine.reference import run_reference

    every, rebalances = 21, 239
    prices = generate_market(n_assets=500, n_days=every * (rebalances + 1), seed=7, gaps=False)
    scores = momentum_scores(prices)
    middle = every * rebalances // 2
    wiring = Wiring((Bug("double_dispatch", middle, "as_executed"), Bug("late_cache", 0, 1),
                     Bug("stale_cash", 0), Bug("risk_manager", 0, 0.08)))
    run = run_engine(prices, scores, k=25, every=every, fees=0.001, wiring=wiring)
    config = {"fees": 0.001, "initial_cash": 1_000_000.0}
    reference = run_reference(prices, run.weights, config).fills.select(
        "timestamp", "asset", "quantity", "price", "fee")
    start, cpu = time.perf_counter(), cpu_time()
    analysis = analyze(Side(reference, rules=rules_for(config), name="reference"),
                       Side(run.fills, name="seed engine"), prices, run.weights, 1_000_000.0)
    seconds, cpu = time.perf_counter() - start, cpu_time() - cpu
    s = analysis.summary
    faults = "; ".join(f"{f['cause']} ({f['what']}) from {str(f['onset'])[:10]}"
                       for f in s["faults"])
    bugs = ", ".join(map(str, wiring.bugs))
    print(f"seed scale: 500 assets, {rebalances} rebalances, bugs {bugs}; "
          f"A {reference.height:,} fills, B {run.fills.height:,}: {s['verdict']}, {faults}")
    print(f"seed scale: {seconds:.1f} s ({cpu:.1f} s of CPU, {processes()}); "
          f"target: under 20 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--only", choices=("compare", "diagnose", "seed"))
    args = parser.parse_args()
    if args.only in (None, "compare"):
        compare(args.fills)
    if args.only in (None, "diagnose"):
        diagnose(args.assets, args.days)
    if args.only in (None, "seed"):
        seed_scale()


if __name__ == "__main__":
    main()
