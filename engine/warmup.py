"""Compile every kernel once, so the first real run loads machine code from the cache.

`python -m engine.warmup` runs tiny backtests through each entry point (target weights
under every profile, with and without risk rules; an order table of every order type with
an OCO pair and a bracket; a callback strategy) and builds every result table, then marks
the cache folder complete (`WARM`). The cache folder is named by a digest of the kernel
modules and lives in the checkout, so a new clone, or a change to a kernel, gets a new
one; `make run` runs the warm-up first, and it does nothing when the mark is there (pass
`--force` to run it anyway). It prints how many kernels it compiled.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

WARM = "warm"  # the file, in the kernels' cache folder, that marks it complete


def _orders(prices: pl.DataFrame) -> pl.DataFrame:
    """One order of each type on the first asset, an OCO pair and a bracket."""
    days = prices["timestamp"].unique().sort()
    asset = prices["asset"].min()
    close = float(prices.filter(pl.col("asset") == asset)["close"][2])
    rows = [
        ("market", 10.0, None, None, None, None, "entry", None),
        ("limit", 5.0, close * 0.99, None, None, None, None, None),
        ("stop", -3.0, None, close * 0.95, None, "pair", None, None),
        ("limit", -3.0, close * 1.05, None, None, "pair", None, None),
        ("stop_limit", 4.0, close * 1.03, close * 1.02, None, None, None, None),
        ("trailing_stop", -4.0, None, None, 0.03, None, None, None),
        ("limit", -10.0, close * 1.04, None, None, None, None, "entry"),
    ]
    return pl.DataFrame(
        [(days[2], asset, *row) for row in rows], orient="row",
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "type": pl.String,
                "quantity": pl.Float64, "limit_price": pl.Float64,
                "stop_price": pl.Float64, "trail": pl.Float64, "group": pl.String,
                "id": pl.String, "parent": pl.String})


def warm_up() -> None:
    """Run every entry point once on a tiny market."""
    from engine.backtest import market_of, run_backtest, run_orders, run_strategy
    from engine.core.config import BacktestConfig
    from engine.core.profiles import PROFILES
    from engine.core.strategy import Strategy
    from engine.data.synthetic import generate_market, momentum_scores
    from engine.research.weights import top_k_weights

    prices = generate_market(n_assets=6, n_days=60, seed=0)
    weights = top_k_weights(momentum_scores(prices), k=2, every=5)
    market = market_of(prices)
    stops = {"stop_loss": 0.02, "take_profit": 0.03, "trailing_stop": 0.04, "max_bars": 7}
    results = []
    for profile in PROFILES:
        for rules in ({}, stops):
            config = BacktestConfig.for_profile(profile, **rules)
            results.append(run_backtest(market, weights, config))
    for shares in ("fractional", "integer"):
        config = BacktestConfig(fees=0.001, slippage=0.001, shares=shares, per_share=0.01,
                                min_fee=1.0, max_positions=3)
        results.append(run_backtest(market, weights, config))
    results.append(run_orders(market, _orders(prices), BacktestConfig()))

    class Callback(Strategy):
        def on_bar(self, ctx) -> None:
            first = ctx.assets[0]
            if np.isnan(ctx.close).any():
                return
            ctx.order_target_percent(first, 0.2)
            if not ctx.has_open_order.any():
                close = float(ctx.close[0])
                ctx.bracket(ctx.assets[1], 3.0, close * 10, close * 0.01)

    results.append(run_strategy(market, Callback(), BacktestConfig()))
    for result in results:
        result.tables()
        result.metrics  # noqa: B018 (computing the metrics compiles their kernels)


def main(argv: list[str] | None = None) -> int:
    from numba.core import event

    from engine.core.kernels import CACHE_DIR

    mark = Path(CACHE_DIR) / WARM
    if mark.is_file() and "--force" not in (sys.argv[1:] if argv is None else argv):
        print(f"engine.warmup: the kernels are compiled already ({CACHE_DIR})")
        return 0

    compiled = []

    class Count(event.Listener):
        def on_start(self, evt) -> None:
            compiled.append(evt)

        def on_end(self, evt) -> None:
            pass

    start = time.perf_counter()
    with event.install_listener("numba:compile", Count()):
        warm_up()
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(f"{len(compiled)} kernels compiled\n")
    print(f"engine.warmup: {len(compiled)} kernels compiled in "
          f"{time.perf_counter() - start:.1f}s (cached for later runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
