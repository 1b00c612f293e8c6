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
first access; vectorbt: `from_orders`). Each engine runs in its own process (peak RSS is
per process) after an untimed warm-up on a small market (compiled code, imports); the two
processes take turns, run by run (`interleave.py`), so that both meet the same load. Each
cell gives the best, median and worst wall time of the repeats; the ratios are per repeat
(best, median, worst) and of the median CPU seconds, which other work on the machine
disturbs less. Finally `tradegap backtest` on files runs in a new process with the
compiled-code cache present and with an empty one (`NUMBA_CACHE_DIR` pointing at an empty
folder). Usage:

    python bench/engine_vs_vectorbt.py [--sizes 500x2520,2000x5040] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interleave import Worker, interleave, ratio_text, ratios, serve, spread

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


def worker(name: str, n_assets: int, n_days: int, score: str, every: int) -> None:
    """Serve one engine's runs (`engine`, `full`) on one workload from this process."""
    factory = {"tradegap": tradegap, "vectorbt-rust": vectorbt_rust}[name]
    for warm in factory(*inputs(30, 120, score, every)):
        warm()
    engine, full = factory(*inputs(n_assets, n_days, score, every))
    serve({"engine": engine, "full": full})


def measure(n_assets: int, n_days: int, score: str, every: int, repeats: int) -> dict:
    """Both engines' runs on one workload, interleaved; {(engine, run): answers}, peaks."""
    workers = {e: Worker([__file__, "--worker", e, str(n_assets), str(n_days), score,
                          str(every)]) for e in ENGINES}
    answers = interleave(workers, ["engine", "full"], repeats)
    peaks = {e: w.ask("peak")["peak_mb"] for e, w in workers.items()}
    for w in workers.values():
        w.close()
    return {"answers": answers, "peaks": peaks}


def cold_backtests(n_assets: int, n_days: int, repeats: int, env: dict | None = None
                   ) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (the child's user + system time) of `repeats` runs of
    `tradegap backtest` (`python -m pipelines.cli backtest`, this tree's code) on the daily
    turnover workload, each in a new process, after one untimed run that fills the
    compiled-code cache and the bytecode caches; `env` is added to the timed runs'
    environment. PYTHONDONTWRITEBYTECODE is dropped from it, as a user's Python writes
    bytecode caches: with it, each new process compiles every module of this tree from
    source again (about 0.2 s of CPU)."""
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as folder:
        work = Path(folder)
        prices, weights = inputs(n_assets, n_days, "turnover", 1)
        prices.write_parquet(work / "prices.parquet")
        weights.write_parquet(work / "weights.parquet")
        command = [sys.executable, "-m", "pipelines.cli", "backtest", "--prices",
                   str(work / "prices.parquet"), "--weights", str(work / "weights.parquet"),
                   "--out", str(work / "out"), "--fees", str(FEES)]
        environment = {name: value for name, value in os.environ.items()
                       if name != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=environment)
        walls, cpus = [], []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT,
                           env={**environment, **(env or {})})
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return walls, cpus


def cold_cli(n_assets: int, n_days: int, repeats: int = 3) -> dict[str, str]:
    """A cold `tradegap backtest`: median of `repeats` with the compiled-code cache
    present, once with an empty one."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench_cache_") as empty:
        for label, extra, times in (("cache present", {}, repeats),
                                    ("cache absent", {"NUMBA_CACHE_DIR": empty}, 1)):
            walls, cpus = cold_backtests(n_assets, n_days, times, extra)
            figures[label] = (f"{statistics.median(walls):.2f} s wall "
                              f"({min(walls):.2f}–{max(walls):.2f}), "
                              f"{statistics.median(cpus):.2f} s CPU")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x2520,2000x5040")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, n_assets, n_days, score, every = args.worker
        worker(name, int(n_assets), int(n_days), score, int(every))
        return

    print(f"top {TOP} at equal weight, next open, {FEES:.1%} fees; full = run_backtest + "
          "6 tables (tradegap), from_orders + value, orders, assets, trades (vectorbt); "
          f"{args.repeats} repeats interleaved (2 at 2,000 × 5,040); times best / median / "
          "worst wall, then CPU; ratio = vectorbt-rust time / tradegap time per repeat, and of the "
          "median CPU seconds")
    columns = ("size", "workload", "rebalance", "tradegap full", "vectorbt-rust full",
               "ratio full", "tradegap engine only", "vectorbt-rust engine only",
               "ratio engine only", "peak RSS tradegap / vectorbt", "fills")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for size in args.sizes.split(","):
        n_assets, n_days = map(int, size.split("x"))
        repeats = args.repeats if n_assets * n_days <= 2_000_000 else 2
        for score in SCORES:
            for label, every in EVERY.items():
                got = measure(n_assets, n_days, score, every, repeats)
                runs, peaks = got["answers"], got["peaks"]
                ours, theirs = (runs[e, "full"][-1]["result"] for e in ENGINES)
                gap = abs(ours[0] / theirs[0] - 1)
                assert gap < 1e-9, f"final equity differs by {gap:.1e}"
                cells = [f"{n_assets:,} × {n_days:,}", score, label]
                for run in ("full", "engine"):
                    cells += [f"{spread(runs[e, run])}, CPU {spread(runs[e, run], 'cpu')}"
                              for e in ENGINES]
                    cells.append(ratio_text(ratios(runs["vectorbt-rust", run],
                                                   runs["tradegap", run])))
                cells += [f"{peaks['tradegap']:,.0f} / {peaks['vectorbt-rust']:,.0f} MB",
                          f"{ours[1]:,}"]
                print("| " + " | ".join(cells) + " |", flush=True)
    cold = cold_cli(500, 2520)
    print("\ncold `tradegap backtest` (500 × 2,520, turnover, daily; new process): "
          + "; ".join(f"{label} {figures}" for label, figures in cold.items()))


if __name__ == "__main__":
    main()
