"""Stops on the hard workload: tradegap against vectorbt-rust `from_signals`, in one run.

The market of `engine_vs_vectorbt.py`'s daily turnover row: 500 assets × 2,520 days, the
top 50 by a score drawn anew every bar, decided at the close, filled at the next open,
10 bp fees, a 5% stop-loss and a 10% take-profit on every position. Both engines produce
every output a user reads.

- The ratio, on the same signals: a name is entered when it joins the top 50 (0.2% of the
  initial cash, so that the cash never binds and both engines make every trade) and left
  when it drops out. tradegap runs them as an order table (`run_orders`, market orders
  plus the stop rules, then the fills, orders, positions, equity, trades and metrics
  tables), once loading and validating the prices inside the timing and once given the
  `Market` built from them outside it (the order table is validated inside both);
  vectorbt-rust as `Portfolio.from_signals(..., engine="rust")` with `sl_stop`/`tp_stop`
  on the open/high/low/close (its wide frames prepared outside the timing), then
  `value()`, the order records, `assets()` and the trade records. Entry sizes differ
  slightly (tradegap sizes the buy at the decision close, vectorbt at the fill), so the
  fill counts are printed beside the times.
- The cost of the rules: tradegap's daily target-weight rebalance (about 95 fills a bar)
  with and without the two stops.

Each runner has its own process, warmed up untimed on a small market; the processes take
turns run by run (`interleave.py`), so that all meet the same load. Each line gives the
best, median and worst wall time and the CPU seconds; the ratios are per repeat (best,
median, worst; then each repeat in the order run, the first being each process's first
full-size run) and of the median CPU seconds. Usage:

    python bench/stops_vs_vectorbt.py [--assets 500] [--days 2520] [--repeats 5]
"""

from __future__ import annotations

import argparse

from engine_vs_vectorbt import FEES, inputs
from interleave import Worker, in_order, interleave, ratio_text, ratios, serve, spread

STOP_LOSS, TAKE_PROFIT = 0.05, 0.10
SLOT_VALUE = 0.002  # of the initial cash per entry: small enough that cash never binds


def signals(prices, weights):
    """(market, entries, exits): a name is entered at the open after the close where it
    joins the top 50 and left at the open after the close where it drops out."""
    import numpy as np

    from engine import market_of

    market = market_of(prices)
    chosen = np.nan_to_num(market.pivot(weights, "weight")) > 0  # decided at t's close
    before = np.vstack([np.zeros((1, chosen.shape[1]), bool), chosen[:-1]])
    return market, chosen & ~before, before & ~chosen


def tradegap_weights(prices, weights, rules: bool):
    from engine import BacktestConfig, run_backtest

    extra = {"stop_loss": STOP_LOSS, "take_profit": TAKE_PROFIT} if rules else {}
    config = BacktestConfig(fees=FEES, **extra)

    def full():
        result = run_backtest(prices, weights, config)
        return _outputs(result)

    return full


def tradegap_signals(prices, weights, prepared: bool = False):
    """The signals as an order table: a buy worth the slot at the decision close, and a
    sell of what that bought (capped at what the stops left). `prepared`: the prices
    passed as the `Market` built outside the timing (as vectorbt's frames are), else
    loaded and validated from the frame inside it."""
    import numpy as np
    import polars as pl

    from engine import BacktestConfig, run_orders

    market, entries, exits = signals(prices, weights)
    close = market.close
    bars, assets = np.nonzero(entries | exits)
    bought = np.zeros(close.shape[1])
    quantity = np.empty(len(bars))
    for i, (t, j) in enumerate(zip(bars, assets, strict=True)):
        if entries[t, j]:
            bought[j] = SLOT_VALUE * 1_000_000.0 / close[t, j]
            quantity[i] = bought[j]
        else:
            quantity[i] = -bought[j]
    stamps = market.timestamps.to_numpy()
    orders = pl.DataFrame({
        "timestamp": stamps[bars], "asset": np.asarray(market.assets.to_list())[assets],
        "type": "market", "quantity": quantity,
    }).sort("timestamp", maintain_order=True)
    config = BacktestConfig(fees=FEES, stop_loss=STOP_LOSS, take_profit=TAKE_PROFIT)
    source = market if prepared else prices

    def full():
        return _outputs(run_orders(source, orders, config))

    return full


def _outputs(result) -> tuple[int, int]:
    """Every table a user reads; (fills, fills by a stop-loss or take-profit)."""
    tables = (result.fills, result.orders, result.positions, result.equity, result.trades,
              result.metrics)
    stops = tables[0].filter(tables[0]["trigger"].is_in(["stop_loss", "take_profit"]))
    return tables[0].height, stops.height


def vectorbt_rust(prices, weights):
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    market, entries, exits = signals(prices, weights)
    late = np.zeros((1, entries.shape[1]), bool)  # the signal of t's close acts at t+1
    index = pd.DatetimeIndex(market.timestamps.to_numpy())
    columns = market.assets.to_list()

    def frame(field: str) -> pd.DataFrame:
        return pd.DataFrame(getattr(market, field), index=index, columns=columns)

    kwargs = dict(
        close=frame("close"), open=frame("open"), high=frame("high"), low=frame("low"),
        price=frame("open"), entries=np.vstack([late, entries[:-1]]),
        exits=np.vstack([late, exits[:-1]]), size=SLOT_VALUE * 1_000_000.0,
        size_type="value", fees=FEES, init_cash=1_000_000.0, cash_sharing=True,
        group_by=True, call_seq="auto", sl_stop=STOP_LOSS, tp_stop=TAKE_PROFIT, freq="1D")

    def full():
        pf = vbt.Portfolio.from_signals(**kwargs, engine="rust")
        outputs = (pf.orders.records_arr, pf.assets(), pf.trades.records_arr, pf.value())
        return len(outputs[0]), None

    return full


RUNNERS = {
    "tradegap, signals + stops": tradegap_signals,
    "tradegap, same, prepared market": lambda p, w: tradegap_signals(p, w, prepared=True),
    "vectorbt-rust, signals + stops": vectorbt_rust,
    "tradegap, weights + stops": lambda p, w: tradegap_weights(p, w, rules=True),
    "tradegap, weights": lambda p, w: tradegap_weights(p, w, rules=False),
}


def worker(name: str, n_assets: int, n_days: int) -> None:
    """Serve one runner's `full` run from this process, after a warm-up."""
    RUNNERS[name](*inputs(30, 120, "turnover", 1))()
    serve({"full": RUNNERS[name](*inputs(n_assets, n_days, "turnover", 1))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, n_assets, n_days = args.worker
        worker(name, int(n_assets), int(n_days))
        return
    print(f"stops on the daily turnover workload, {args.assets} assets × {args.days} days, "
          f"stop-loss {STOP_LOSS:.0%}, take-profit {TAKE_PROFIT:.0%}, full outputs, "
          f"{args.repeats} repeats interleaved; wall and CPU best / median / worst")
    workers = {name: Worker([__file__, "--worker", name, str(args.assets), str(args.days)])
               for name in RUNNERS}
    runs = {name: answers for (name, _), answers in
            interleave(workers, ["full"], args.repeats).items()}
    for worker_process in workers.values():
        worker_process.close()
    for name, answers in runs.items():
        fills = answers[-1]["result"][0]
        print(f"  {name:<32} {spread(answers)}  CPU {spread(answers, 'cpu')}  {fills:>8,} fills")
    theirs = runs["vectorbt-rust, signals + stops"]
    print("  ratio on the signals (vectorbt-rust time / tradegap time per repeat; target ≥ 3×):")
    for name, setup in (("tradegap, same, prepared market", "inputs prepared outside the "
                         "timing on both sides"),
                        ("tradegap, signals + stops", "tradegap also loading and validating "
                         "the prices")):
        print(f"    {ratio_text(ratios(theirs, runs[name]))}  {setup}")
        print(f"      per repeat in order: {in_order(theirs, runs[name])}")
    stops, plain = runs["tradegap, weights + stops"], runs["tradegap, weights"]
    stop_fills = stops[-1]["result"][1]
    cost = ratios(stops, plain)
    print(f"  cost of the rules on the weights: {cost['median']:.2f}× the same run without "
          f"them (median of repeats; CPU {cost['cpu']:.2f}×; {stop_fills:,} stop fills)")


if __name__ == "__main__":
    main()
