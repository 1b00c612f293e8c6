"""Cost of the risk rules on the rebalancing hot path: the same run with and without them.

500 assets × 2,520 days (no missing bars), top 50 at equal weight rebalanced every bar,
10 bp fees, next-open fills; ranked by 21-day momentum or by a random score drawn anew each
bar (high turnover). Each run is `run_backtest` (validation, pivot, simulation), best of
`--repeats` after an untimed warm-up. The rules are `stop_loss=0.05, take_profit=0.10`:
every position gets two resting exits, matched inside each bar by the compiled loop.
Usage:

    python bench/rules_speed.py [--size 500x2520] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market, momentum_scores, random_scores
from engine.research.weights import top_k_weights

RULES = {"stop_loss": 0.05, "take_profit": 0.10}


def best_of(repeats: int, prices, weights, config) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run_backtest(prices, weights, config)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="500x2520")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n_assets, n_days = (int(x) for x in args.size.split("x"))
    small = generate_market(n_assets=20, n_days=60, seed=0, gaps=False)
    small_weights = top_k_weights(random_scores(small, seed=1), k=5, every=1)
    for rules in ({}, RULES):
        run_backtest(small, small_weights, BacktestConfig(fees=0.001, **rules))
    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=0, gaps=False)
    for name, scores in (("momentum", momentum_scores(prices)),
                         ("turnover", random_scores(prices, seed=1))):
        weights = top_k_weights(scores, k=50, every=1)
        plain, result = best_of(args.repeats, prices, weights, BacktestConfig(fees=0.001))
        ruled, with_rules = best_of(args.repeats, prices, weights,
                                    BacktestConfig(fees=0.001, **RULES))
        exits = with_rules.fills.filter(with_rules.fills["trigger"] != "market").height
        print(f"{name:9s} {n_assets}x{n_days} daily: without rules {plain:.3f} s "
              f"({result.fills.height} fills), with stop_loss/take_profit {ruled:.3f} s "
              f"({with_rules.fills.height} fills, {exits} rule exits), "
              f"ratio {ruled / plain:.2f}")


if __name__ == "__main__":
    main()
