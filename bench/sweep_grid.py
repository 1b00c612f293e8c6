"""A parameter grid at engine speed: `run_sweep` against the same points run one by one,
and vectorbt's broadcast sweep of the same grid, side by side in one run.

The grid is top-K (10, 25, 50, 100) × rebalance interval (5, 10, 21, 63) × fees (0, 10,
25 bp) × fill (next open, next close): 96 points on 500 assets × 2,520 days, ranked by a
score drawn anew every bar (high turnover). Each point yields its metrics.

- `single runs, summed`: each point's own engine time (`run_weights` on a prepared market
  with its validated weights, then its metrics), added up: the floor a sweep is held to;
- `run_sweep`: the whole grid in one call (weights built and validated inside the timing),
  on a pool of threads over the machine's cores;
- `vectorbt-rust broadcast`: `Portfolio.from_orders` once per fill timing over every
  (top-K, interval, fee) group side by side (cash shared within a group, fees per column),
  wide inputs prepared outside the timing, total return per group;
- a 1,000-point grid (10 top-K × 10 intervals × 5 fees × 2 fills) through `run_sweep`,
  with its wall time and peak memory.

Each measurement runs in a fresh process after an untimed warm-up (compiled code). Usage:

    .venv/bin/python bench/sweep_grid.py [--assets 500] [--days 2520] [--skip-1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

TOP_K, EVERY = (10, 25, 50, 100), (5, 10, 21, 63)
FEES, FILLS = (0.0, 0.001, 0.0025), ("next_open", "next_close")
BIG = {"top_k": (5, 10, 15, 20, 25, 30, 40, 50, 75, 100),
       "every": (1, 2, 3, 5, 8, 10, 15, 21, 42, 63),
       "fees": (0.0, 0.0005, 0.001, 0.002, 0.003), "fill": FILLS}


def market(n_assets: int, n_days: int):
    from engine.data.synthetic import generate_market, random_scores

    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=0, gaps=False)
    return prices, random_scores(prices, seed=1)


def warm_up() -> None:
    from engine.sweep import grid, run_sweep

    prices, scores = market(20, 80)
    run_sweep(prices, scores, grid([3], [5], fees=[0.0], fill=FILLS),
              keep=lambda point, result: result.metrics)


def singles(n_assets: int, n_days: int) -> dict:
    from engine import BacktestConfig, market_of
    from engine.backtest import run_weights, valid_weights
    from engine.research.weights import top_k_weights
    from engine.sweep import grid

    prices, scores = market(n_assets, n_days)
    prepared = market_of(prices)
    total, fills = 0.0, 0
    for point in grid(TOP_K, EVERY, fees=FEES, fill=FILLS):
        config = BacktestConfig().with_(**point.settings)
        weights = valid_weights(top_k_weights(scores, point.top_k, point.every), prepared,
                                config)
        start = time.perf_counter()
        result = run_weights(prepared, weights, config)
        result.metrics  # noqa: B018
        total += time.perf_counter() - start
        fills += result.fills.height
    return {"seconds": total, "fills": fills}


def sweep(n_assets: int, n_days: int, big: bool = False) -> dict:
    from engine.sweep import grid, run_sweep

    prices, scores = market(n_assets, n_days)
    points = grid(BIG["top_k"], BIG["every"], fees=BIG["fees"], fill=BIG["fill"]) if big \
        else grid(TOP_K, EVERY, fees=FEES, fill=FILLS)
    start = time.perf_counter()
    swept = run_sweep(prices, scores, points, keep=lambda point, result: (
        result.metrics, result.fills.height))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "points": len(swept),
            "fills": sum(fills for _, (_, fills) in swept)}


def vectorbt(n_assets: int, n_days: int) -> dict:
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    from engine import BacktestConfig, market_of
    from engine.peers.vectorbt import vectorbt_inputs
    from engine.research.weights import top_k_weights

    prices, scores = market(n_assets, n_days)
    prepared = market_of(prices)
    calls = []
    for fill in FILLS:
        sizes, closes, price_frames, fees, groups = [], [], [], [], []
        for k in TOP_K:
            for every in EVERY:
                kwargs = vectorbt_inputs(prepared, top_k_weights(scores, k, every),
                                         BacktestConfig(fill=fill))
                for fee in FEES:
                    label = f"k{k} every{every} fee{fee}"
                    sizes.append(kwargs["size"])
                    closes.append(kwargs["close"])
                    price_frames.append(kwargs["price"])
                    fees.append(np.full(n_assets, fee))
                    groups.extend([label] * n_assets)
        keys = list(range(len(sizes)))
        calls.append(dict(
            size=pd.concat(sizes, axis=1, keys=keys), close=pd.concat(closes, axis=1, keys=keys),
            price=pd.concat(price_frames, axis=1, keys=keys), fees=np.concatenate(fees)[None],
            group_by=pd.Index(groups, name="point"), size_type="targetpercent",
            direction="longonly", min_size=1e-10, init_cash=1_000_000.0, cash_sharing=True,
            call_seq="auto", freq="1D"))
    start = time.perf_counter()
    points, orders = 0, 0
    for kwargs in calls:
        pf = vbt.Portfolio.from_orders(**kwargs, engine="rust")
        points += len(pf.total_return())
        orders += len(pf.orders.records_arr)
    return {"seconds": time.perf_counter() - start, "points": points, "fills": orders}


def worker(kind: str, n_assets: int, n_days: int) -> dict:
    warm_up()
    figures = {"singles": singles, "sweep": sweep, "vectorbt": vectorbt,
               "sweep1000": lambda a, d: sweep(a, d, big=True)}[kind](n_assets, n_days)
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def measure(kind: str, n_assets: int, n_days: int) -> dict | None:
    done = subprocess.run([sys.executable, __file__, "--worker", kind, str(n_assets),
                           str(n_days)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"{kind}: failed: {done.stderr.strip().splitlines()[-3:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--skip-1000", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, n_assets, n_days = args.worker
        print(json.dumps(worker(kind, int(n_assets), int(n_days))))
        return
    load = os.getloadavg()[0]
    print(f"96-point grid on {args.assets} × {args.days}, high turnover; "
          f"{os.cpu_count()} cores, load average {load:.1f}")
    single = measure("singles", args.assets, args.days)
    swept = measure("sweep", args.assets, args.days)
    theirs = measure("vectorbt", args.assets, args.days)
    print("| run | wall time | points | fills | peak RSS |\n|---|---|---|---|---|")
    for label, row in (("single runs, summed (engine + metrics)", single),
                       ("run_sweep (threads over cores)", swept),
                       ("vectorbt-rust broadcast (2 calls)", theirs)):
        if row:
            print(f"| {label} | {row['seconds']:.2f} s | {row.get('points', 96)} | "
                  f"{row['fills']:,} | {row['peak_mb']:,.0f} MB |")
    if single and swept:
        print(f"run_sweep / sum of single runs: {swept['seconds'] / single['seconds']:.2f} "
              "(target: at most 1.5)")
    if swept and theirs:
        print(f"vectorbt broadcast / run_sweep: {theirs['seconds'] / swept['seconds']:.2f}×")
    if not args.skip_1000:
        big = measure("sweep1000", args.assets, args.days)
        if big:
            print(f"1,000-point grid: {big['seconds']:.1f} s wall, {big['fills']:,} fills, "
                  f"peak RSS {big['peak_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
