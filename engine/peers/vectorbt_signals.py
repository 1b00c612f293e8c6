"""Run entries with stop-loss, take-profit and trailing stop through vectorbt's
`Portfolio.from_signals` (1.2.0) and normalize its fills.

Entries are a table `timestamp, asset, quantity`: at the close of `timestamp`, hold
`quantity` shares of `asset` if flat (vectorbt ignores an entry while a position is open;
in our terms a `target_shares` order). The entry goes on the next row and fills at that
row's open (`price=open`, `size_type='amount'`, `accumulate=False`, long only). The
settings map as: `stop_loss` → `sl_stop`; `trailing_stop` → `sl_stop` with `sl_trail=True`
(vectorbt has one stop-loss, fixed or trailing, so at most one of the two); `take_profit`
→ `tp_stop`; `fees`, `fixed_fee`, `slippage` as in `from_orders`. `stop_entry_price`
(default `Close`: the entry bar's close, our `stop_base='close'`; `FillPrice`: our
`'fill'`) and `stop_exit_price` (default `StopLimit`: the level, or the open on a gap,
without slippage) are passed through, and so is `engine` (`numba`, `rust`, `auto`).
vectorbt has no time stop (`max_bars` is refused).

Fills: `timestamp, asset, quantity, price, fee, order_id` and `trigger` (`market` for the
entries, `stop` for every exit: vectorbt's order records do not say which stop fired).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.data.loading import load_prices
from engine.data.market import Market
from engine.peers.result import PeerResult


def run_vectorbt_signals(
    prices: pl.DataFrame, entries: pl.DataFrame, config: BacktestConfig | dict | None = None,
    stop_entry_price: str = "Close", stop_exit_price: str = "StopLimit", engine: str = "auto",
) -> PeerResult:
    """Run `entries` under the config's `stop_loss`/`trailing_stop`/`take_profit`."""
    import pandas as pd
    import vectorbt as vbt

    settings = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    stop_loss = float(settings.get("stop_loss") or 0.0)
    trailing = float(settings.get("trailing_stop") or 0.0)
    take_profit = float(settings.get("take_profit") or 0.0)
    if stop_loss and trailing:
        raise ValueError("vectorbt has one stop-loss: fixed (sl_stop) or trailing (sl_trail)")
    if settings.get("max_bars"):
        raise ValueError("vectorbt has no time stop")
    market = Market.from_bars(load_prices(prices))
    index = pd.DatetimeIndex(market.timestamps.to_numpy())
    columns = market.assets.to_list()
    rows = {t: i for i, t in enumerate(market.timestamps.to_list())}
    cols = {a: j for j, a in enumerate(columns)}
    signal = np.zeros(market.close.shape, dtype=bool)
    size = np.full(market.close.shape, np.nan)
    for t, asset, quantity in entries.select("timestamp", "asset", "quantity").iter_rows():
        row = rows[t] + 1
        if row < signal.shape[0]:
            signal[row, cols[asset]] = True
            size[row, cols[asset]] = quantity

    def wide(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a, index=index, columns=columns)

    portfolio = vbt.Portfolio.from_signals(
        close=wide(market.close), open=wide(market.open), high=wide(market.high),
        low=wide(market.low), entries=wide(signal), exits=False, size=wide(size),
        size_type="amount", price=wide(market.open), direction="longonly",
        accumulate=False, fees=float(settings.get("fees", 0.0)),
        fixed_fees=float(settings.get("fixed_fee", 0.0)),
        slippage=float(settings.get("slippage", 0.0)),
        sl_stop=(trailing or stop_loss) or np.nan, sl_trail=bool(trailing),
        tp_stop=take_profit or np.nan, stop_entry_price=stop_entry_price,
        stop_exit_price=stop_exit_price, init_cash=float(settings.get("initial_cash", 1e6)),
        cash_sharing=True, group_by=True, min_size=1e-10, freq="1D", engine=engine)
    rec = portfolio.orders.records_arr
    quantity = np.where(rec["side"] == 0, rec["size"], -rec["size"]).astype(np.float64)
    trigger = _triggers(rec)
    fills = pl.DataFrame({
        "timestamp": market.timestamps.gather(rec["idx"]),
        "asset": market.assets.gather(rec["col"]),
        "quantity": quantity, "price": rec["price"].astype(np.float64),
        "fee": rec["fees"].astype(np.float64), "order_id": rec["id"].astype(np.int64),
        "trigger": trigger,
    })
    cash = portfolio.cash().to_numpy().ravel()
    value = portfolio.value().to_numpy().ravel()
    equity = pl.DataFrame({"timestamp": market.timestamps, "cash": cash,
                           "positions_value": value - cash, "equity": value})
    return PeerResult(fills, equity)


def _triggers(rec: np.ndarray) -> list[str]:
    """`market` for the entries (buys) and `stop` for the exits: vectorbt 1.2's order
    records do not say which stop fired."""
    return ["market" if side == 0 else "stop" for side in rec["side"]]
