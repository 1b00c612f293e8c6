"""Engine versus vectorbt, side by side in one run: bars per second and peak memory.

Workload: generated market (no missing bars, so both engines do identical work), top 50
by 21-day momentum at equal weight, decided at the close, filled at the next open, 10 bp
fees; rebalancing every 21 bars and daily. Each engine must produce the full equity
curve, the fills and the positions:

- tradegap: `run_backtest(prices, weights, config)` from long polars frames (validation,
  pivot and simulation) plus the `fills`, `positions` and `equity` tables;
- vectorbt: `Portfolio.from_orders` from wide pandas frames prepared beforehand (in its
  favour), plus `value()`, `assets()` and the order records.

Every measurement runs in a fresh process (peak RSS is per process), after an untimed
warm-up on a small market (JIT caches, imports). Usage:

    python bench/engine_vs_vectorbt.py [--sizes 500x2520,2000x5040] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

TOP, FEES = 50, 0.001
WORKLOADS = {"every 21 bars": 21, "daily": 1}


def _inputs(n_assets: int, n_days: int, every: int):
    from engine.data.synthetic import generate_market, momentum_scores
    from engine.research.weights import top_k_weights

    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=0, gaps=False)
    weights = top_k_weights(momentum_scores(prices), k=TOP, every=every)
    return prices, weights


def _tradegap(prices, weights):
    from engine import BacktestConfig, run_backtest

    def run():
        result = run_backtest(prices, weights, BacktestConfig(fees=FEES))
        tables = (result.fills, result.positions, result.equity)
        return result.final_equity, tables[0].height

    return run


def _vectorbt(prices, weights, engine: str):
    import vectorbt as vbt

    from engine import BacktestConfig
    from engine.data.market import Market
    from engine.peers.vectorbt import vectorbt_inputs

    market = Market.from_bars(prices)
    kwargs = vectorbt_inputs(market, weights, BacktestConfig(fees=FEES))

    def run():
        pf = vbt.Portfolio.from_orders(**kwargs, engine=engine)
        value = pf.value()
        pf.assets()
        records = pf.orders.records_arr
        return float(value.iloc[-1]), len(records)

    return run


def worker(name: str, n_assets: int, n_days: int, every: int, repeats: int) -> dict:
    """Time one engine on one workload in this process; returns the figures."""
    small = _inputs(30, 120, every)
    factory = {
        "tradegap": _tradegap,
        "vectorbt-rust": lambda p, w: _vectorbt(p, w, "rust"),
        "vectorbt-numba": lambda p, w: _vectorbt(p, w, "numba"),
    }[name]
    factory(*small)()
    prices, weights = _inputs(n_assets, n_days, every)
    run = factory(prices, weights)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        final_equity, n_fills = run()
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": statistics.median(seconds), "peak_mb": peak,
            "added_mb": peak - rss_before, "final_equity": final_equity, "fills": n_fills}


def measure(name, n_assets, n_days, every, repeats) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", name, str(n_assets), str(n_days), str(every),
           str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  {name}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x2520,2000x5040")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, *numbers = args.worker
        print(json.dumps(worker(name, *map(int, numbers))))
        return

    engines = ("tradegap", "vectorbt-rust", "vectorbt-numba")
    for size in args.sizes.split(","):
        n_assets, n_days = map(int, size.split("x"))
        bars = n_assets * n_days
        repeats = args.repeats if bars <= 2_000_000 else 1
        print(f"\n{n_assets} assets x {n_days} days ({bars:,} bars), top {TOP}, next open, "
              f"{FEES:.1%} fees, median of {repeats}")
        print(f"{'workload':<14} {'engine':<15} {'seconds':>8} {'bars/s':>12} "
              f"{'peak MB':>8} {'added MB':>8} {'fills':>9}  final equity")
        for label, every in WORKLOADS.items():
            results = {e: measure(e, n_assets, n_days, every, repeats) for e in engines}
            for engine, r in results.items():
                if r is None:
                    continue
                print(f"{label:<14} {engine:<15} {r['seconds']:>8.3f} "
                      f"{bars / r['seconds']:>12,.0f} {r['peak_mb']:>8.0f} "
                      f"{r['added_mb']:>8.0f} {r['fills']:>9,}  {r['final_equity']:,.6f}")
            ours = results["tradegap"]
            peers = [r for e, r in results.items() if e != "tradegap" and r]
            if ours and peers:
                best = min(peers, key=lambda r: r["seconds"])
                gap = abs(ours["final_equity"] / best["final_equity"] - 1)
                print(f"{'':<14} tradegap is {best['seconds'] / ours['seconds']:.2f}x faster "
                      f"than the faster vectorbt; peak memory {ours['peak_mb']:.0f} vs "
                      f"{best['peak_mb']:.0f} MB; final equity differs by {gap:.1e}")


if __name__ == "__main__":
    main()
