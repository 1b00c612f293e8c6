"""Run backtrader (1.9.78.123) on our prices and weights; normalize its records.

Each asset is one pandas data feed. At the close of every decision bar the strategy calls
`order_target_percent` for every asset with a weight, and with 0 for every held asset that
is not in the weights, submitting in ascending order of the delta estimated at that close
(`target × broker value − position × close`): sells first, largest first, then buys,
smallest first, as our `rebalance` does. backtrader pseudo-executes submitted orders in
that order against the cash at the next bar and rejects with `Margin` any that would
overdraw it (it checks again at the fill, so a gap up can also refuse a buy).

backtrader sizes natively: `int(|target value − position value| // close)` shares (whole
shares whatever `config.shares` says), commission not included. Fill timing:
`next_open` → market orders (next bar's open), `next_close` → `Order.Close` (next bar's
close), `same_close` → `broker.set_coc(True)` (this bar's close; the fill is dated at the
decision bar but reaches the broker's cash, so our equity table, a bar later). `fees` is a
percentage commission, `slippage` `set_slippage_perc` (applied at the open too, capped to
the bar's high/low). An asset with no bar at a timestamp keeps its last close as its
price; its order waits for its next bar; before an asset's first bar it is not traded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.core.strategy import decision_weights
from engine.data.loading import load_prices, load_weights
from engine.data.market import Market
from engine.peers.result import PeerResult

UNSUPPORTED = {
    "per_share": "not mapped to a backtrader commission scheme",
    "min_fee": "backtrader has no minimum commission",
    "fixed_fee": "not mapped to a backtrader commission scheme",
    "allow_short": "the adapter runs long-only books",
}


@dataclass(frozen=True)
class BacktraderResult(PeerResult):
    """A backtrader run: fills, equity, and the orders it refused (`rejections`).

    `rejections` has `created` (decision bar), `timestamp` (bar where refused), `asset`,
    `quantity` (signed shares requested), `status` (`margin`, `rejected`), `order_id`.
    """

    rejections: pl.DataFrame


def run_backtrader(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig | None = None
) -> BacktraderResult:
    """Run backtrader on the same inputs as `engine.run_backtest` and normalize the result."""
    cerebro, market = rebalancing_cerebro(prices, weights, config or BacktestConfig())
    (run,) = cerebro.run()
    return _normalize(run, market)


def rebalancing_cerebro(prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig):
    """(cerebro, market): backtrader set up to rebalance to `weights` under `config`, not yet
    run (a caller may add analyzers first)."""
    import backtrader as bt

    for name, why in UNSUPPORTED.items():
        if getattr(config, name):
            raise ValueError(f"cannot run backtrader with {name}: {why}")
    bars = load_prices(prices)
    targets = load_weights(weights, bars)
    market = Market.from_bars(bars)

    cerebro = bt.Cerebro(stdstats=False)
    for j, asset in enumerate(market.assets.to_list()):
        cerebro.adddata(bt.feeds.PandasData(dataname=_feed_frame(market, j), name=asset))
    cerebro.broker.setcash(config.initial_cash)
    cerebro.broker.setcommission(commission=config.fees)
    if config.slippage:
        cerebro.broker.set_slippage_perc(config.slippage, slip_open=True)
    if config.fill == "same_close":
        cerebro.broker.set_coc(True)
    exectype = bt.Order.Close if config.fill == "next_close" else bt.Order.Market
    cerebro.addstrategy(_rebalancer(bt), decisions=decision_weights(market, targets),
                        exectype=exectype)
    return cerebro, market


def _feed_frame(market: Market, column: int):
    """One asset's bars as the pandas frame `bt.feeds.PandasData` reads (its bars only)."""
    import pandas as pd

    present = market.has_bar[:, column]
    index = pd.DatetimeIndex(market.timestamps.to_numpy()[present])
    return pd.DataFrame(
        {name: getattr(market, name)[present, column]
         for name in ("open", "high", "low", "close", "volume")},
        index=index,
    )


def _rebalancer(bt):
    """The backtrader Strategy class (built lazily so backtrader stays optional)."""

    class Rebalance(bt.Strategy):
        params = (("decisions", None), ("exectype", None))

        def __init__(self) -> None:
            self.order_ids: dict[int, int] = {}
            self.order_rows: list[tuple] = []  # (order_id, created bar)
            self.fill_rows: list[tuple] = []  # (executed, asset, size, price, fee, order_id)
            self.rejection_rows: list[tuple] = []  # (bar, asset, size, status, order_id)
            self.equity_rows: list[tuple[float, float, float]] = []

        def notify_order(self, order) -> None:
            bar = len(self) - 1
            if order.status == order.Completed:
                # The execution time, not the notification bar: with cheat-on-close the
                # fill is dated (and priced) at the decision bar but booked a bar later.
                executed = bt.num2date(order.executed.dt)
                self.fill_rows.append((executed, order.data._name, order.executed.size,
                                       order.executed.price, order.executed.comm,
                                       self.order_ids[order.ref]))
            elif order.status in (order.Margin, order.Rejected):
                status = "margin" if order.status == order.Margin else "rejected"
                self.rejection_rows.append((bar, order.data._name, order.created.size,
                                            status, self.order_ids[order.ref]))

        def prenext(self) -> None:
            self.next()  # some asset has no bar yet: record and trade the others

        def next(self) -> None:
            bar = len(self) - 1
            sizes = np.array([self.getposition(d).size for d in self.datas], dtype=float)
            closes = np.array([d.close[0] if len(d) else np.nan for d in self.datas])
            value = self.broker.getvalue()
            marked = float(sizes[sizes != 0] @ closes[sizes != 0])
            self.equity_rows.append((self.broker.getcash(), marked, value))
            target = self.p.decisions[bar]
            if np.isnan(target).all():
                return
            listed = ~np.isnan(closes)
            chosen = (listed & ((target != 0) | (sizes != 0))).nonzero()[0]
            estimate = target[chosen] * value - sizes[chosen] * closes[chosen]
            for j in chosen[np.argsort(estimate, kind="stable")]:
                order = self.order_target_percent(self.datas[j], target=float(target[j]),
                                                  exectype=self.p.exectype)
                if order is not None:
                    self.order_ids[order.ref] = len(self.order_ids)
                    self.order_rows.append((self.order_ids[order.ref], bar))

    return Rebalance


def _normalize(run, market: Market) -> BacktraderResult:
    """The strategy's recorded fills, rejections and per-bar broker values as our tables."""
    stamps = market.timestamps
    created = dict(run.order_rows)
    fills = pl.DataFrame(
        run.fill_rows, orient="row",
        schema={"executed": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64},
    )
    fills = fills.select(
        pl.Series("timestamp", stamps.gather(_nearest(stamps, fills["executed"]))),
        "asset", "quantity", "price", "fee", "order_id",
    )
    rejected = pl.DataFrame(
        run.rejection_rows, orient="row",
        schema={"bar": pl.Int64, "asset": pl.String, "quantity": pl.Float64,
                "status": pl.String, "order_id": pl.Int64},
    )
    rejections = rejected.select(
        pl.Series("created", stamps.gather([created[i] for i in rejected["order_id"]]),
                  dtype=stamps.dtype),
        pl.Series("timestamp", stamps.gather(rejected["bar"])),
        "asset", "quantity", "status", "order_id",
    )
    cash, positions_value, value = np.array(run.equity_rows, dtype=float).reshape(-1, 3).T
    equity = pl.DataFrame({"timestamp": stamps, "cash": cash,
                           "positions_value": positions_value, "equity": value})
    return BacktraderResult(fills, equity, rejections)


def _nearest(stamps: pl.Series, times: pl.Series) -> np.ndarray:
    """Index of the calendar timestamp nearest each time (backtrader dates are floats)."""
    grid = stamps.dt.epoch("us").to_numpy()
    wanted = times.dt.epoch("us").to_numpy()
    if len(grid) == 1:
        return np.zeros(len(wanted), dtype=np.int64)
    right = np.searchsorted(grid, wanted).clip(1, max(len(grid) - 1, 1))
    left = right - 1
    pick = np.where(np.abs(grid[left] - wanted) <= np.abs(grid[right] - wanted), left, right)
    return pick.clip(0, len(grid) - 1)
