"""tradegap against vectorbt (rust engine), side by side in one run: time, ratio, memory.

Workloads on a generated market (no missing bars, so both engines do the same work), top
50 at equal weight, decided at the close, filled at the next open, 10 bp fees, rebalanced
every bar and every 21 bars:

- momentum: ranked by 21-day momentum (a slow score: few names change at a rebalance);
- turnover: ranked by a random score drawn anew every bar (like a noisy model's; about
  95 fills a bar when rebalanced daily).

Each engine produces every output a user reads:

- tradegap: `run_backtest(prices, weights, config)` from long polars frames (validation,
  pivot and simulation) plus the fills, orders, positions, equity, trades and metrics
  tables;
- vectorbt-rust: `Portfolio.from_orders(..., engine="rust")` from wide pandas frames
  prepared beforehand (in its favour), plus `value()`, the order records, `assets()` and
  the trade records.

`engine only` is the simulation alone (tradegap: `run_backtest`, whose tables are built on
first access; vectorbt: `from_orders`). Every measurement runs in a fresh process (peak RSS
is per process) after an untimed warm-up on a small market (compiled code, imports), and
reports the best of its repeats (other work on the machine only ever adds time).
Finally `tradegap backtest` on files runs in a new process with the compiled-code cache
present and with an empty one (`NUMBA_CACHE_DIR` pointing at an empty folder). Usage:

    python bench/engine_vs_vectorbt.py [--sizes 500x2520,2000x5040] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP, FEES = 50, 0.001
SCORES = ("momentum", "turnover")
EVERY = {"daily": 1, "every 21 bars": 21}
ENGINES = ("tradegap", "vectorbt-rust")
ROOT = Path(__file__).resolve().parents[1]


def inputs(n_assets: int, n_days: int, score: str, every: int):
    """Prices and target weights of one workload."""
    from engine.data.synthetic import generate_market, momentum_scores, random_scores
    from engine.research.weights import top_k_weights

    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=0, gaps=False)
    scores = momentum_scores(prices) if score == "momentum" else random_scores(prices, seed=1)
    return prices, top_k_weights(scores, k=TOP, every=every)


def tradegap(prices, weights):
    """(engine only, full outputs): each returns (final equity, fills)."""
    from engine import BacktestConfig, run_backtest

    config = BacktestConfig(fees=FEES)

    def engine():
        result = run_backtest(prices, weights, config)
        return result.final_equity, result.fills.height

    def full():
        result = run_backtest(prices, weights, config)
        tables = (result.fills, result.orders, result.positions, result.equity, result.trades,
                  result.metrics)
        return result.final_equity, tables[0].height

    return engine, full


def vectorbt_rust(prices, weights):
    """(engine only, full outputs) on wide frames prepared here, outside the timing."""
    import vectorbt as vbt

    from engine import BacktestConfig
    from engine.data.market import Market
    from engine.peers.vectorbt import vectorbt_inputs

    kwargs = vectorbt_inputs(Market.from_bars(prices), weights, BacktestConfig(fees=FEES))

    def engine():
        pf = vbt.Portfolio.from_orders(**kwargs, engine="rust")
        return float(pf.final_value()), len(pf.orders.records_arr)

    def full():
        pf = vbt.Portfolio.from_orders(**kwargs, engine="rust")
        value = pf.value()
        outputs = (pf.orders.records_arr, pf.assets(), pf.trades.records_arr)
        return float(value.iloc[-1]), len(outputs[0])

    return engine, full


def worker(name: str, n_assets: int, n_days: int, score: str, every: int, repeats: int) -> dict:
    """Time one engine on one workload in this process; returns the figures."""
    factory = {"tradegap": tradegap, "vectorbt-rust": vectorbt_rust}[name]
    for warm in factory(*inputs(30, 120, score, every)):
        warm()
    engine, full = factory(*inputs(n_assets, n_days, score, every))
    times = {"engine": [], "full": []}
    for _ in range(repeats):
        for label, run in (("engine", engine), ("full", full)):
            start = time.perf_counter()
            final_equity, n_fills = run()
            times[label].append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"engine": min(times["engine"]), "full": min(times["full"]),
            "peak_mb": peak, "final_equity": final_equity, "fills": n_fills}


def measure(*args) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  {args[0]}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def cold_cli(n_assets: int, n_days: int) -> dict[str, float]:
    """Seconds of `tradegap backtest` in a new process on the daily turnover workload, with
    the compiled-code cache present and absent."""
    tradegap_cmd = Path(sys.executable).with_name("tradegap")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as folder:
        work = Path(folder)
        prices, weights = inputs(n_assets, n_days, "turnover", 1)
        prices.write_parquet(work / "prices.parquet")
        weights.write_parquet(work / "weights.parquet")
        command = [str(tradegap_cmd), "backtest", "--prices", str(work / "prices.parquet"),
                   "--weights", str(work / "weights.parquet"), "--out", str(work / "out"),
                   "--fees", str(FEES)]
        seconds = {}
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        for label, extra in (("cache present", {}),
                             ("cache absent", {"NUMBA_CACHE_DIR": str(work / "empty")})):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT,
                           env={**os.environ, **extra})
            seconds[label] = time.perf_counter() - start
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x2520,2000x5040")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, n_assets, n_days, score, every, repeats = args.worker
        print(json.dumps(worker(name, int(n_assets), int(n_days), score, int(every),
                                int(repeats))))
        return

    print(f"top {TOP} at equal weight, next open, {FEES:.1%} fees; full = run_backtest + "
          "6 tables (tradegap), from_orders + value, orders, assets, trades (vectorbt); "
          f"best of {args.repeats} runs (1 at 2,000 × 5,040)")
    columns = ("size", "workload", "rebalance", "tradegap full", "vectorbt-rust full", "ratio",
               "tradegap engine only", "vectorbt-rust engine only",
               "peak RSS tradegap / vectorbt", "fills")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for size in args.sizes.split(","):
        n_assets, n_days = map(int, size.split("x"))
        repeats = args.repeats if n_assets * n_days <= 2_000_000 else 1
        for score in SCORES:
            for label, every in EVERY.items():
                ours, theirs = (measure(e, n_assets, n_days, score, every, repeats)
                                for e in ENGINES)
                if not ours or not theirs:
                    continue
                gap = abs(ours["final_equity"] / theirs["final_equity"] - 1)
                assert gap < 1e-9, f"final equity differs by {gap:.1e}"
                print(f"| {n_assets:,} × {n_days:,} | {score} | {label} | "
                      f"{ours['full']:.3f} s | {theirs['full']:.3f} s | "
                      f"**{theirs['full'] / ours['full']:.2f}×** | {ours['engine']:.3f} s | "
                      f"{theirs['engine']:.3f} s | {ours['peak_mb']:,.0f} / "
                      f"{theirs['peak_mb']:,.0f} MB | {ours['fills']:,} |", flush=True)
    cold = cold_cli(500, 2520)
    print("\ncold `tradegap backtest` (500 × 2,520, turnover, daily; new process): "
          + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in cold.items()))


if __name__ == "__main__":
    main()
