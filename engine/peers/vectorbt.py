"""Run vectorbt's `Portfolio.from_orders` on our prices and weights; normalize its records.

Settings: `size_type='targetpercent'`, `cash_sharing=True` (one group), `call_seq='auto'`,
`direction='longonly'` (or `'both'` with shorts), weights placed on the fill row, price =
open (`next_open`) or close. `min_size=1e-10` drops only float dust (vectorbt's default
1e-8 silently drops small rebalancing trades). vectorbt ignores an order whose asset has
no price on the fill row instead of waiting; use complete universes for exact parity.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.core.strategy import decision_weights
from engine.data.loading import load_prices, load_weights
from engine.data.market import Market
from engine.peers.result import PeerResult

UNSUPPORTED = {
    "per_share": "vectorbt has no per-share commission",
    "min_fee": "vectorbt has no minimum commission",
}


def vectorbt_inputs(
    market: Market, weights: pl.DataFrame, config: BacktestConfig
) -> dict[str, object]:
    """Keyword arguments for `Portfolio.from_orders` that express `config` (pandas wide)."""
    import pandas as pd

    for name, why in UNSUPPORTED.items():
        if getattr(config, name):
            raise ValueError(f"cannot run vectorbt with {name}: {why}")
    if config.cash_policy != "shrink":
        raise ValueError("vectorbt only shrinks buys to the cash available")
    decisions = decision_weights(market, weights)
    size = np.full_like(decisions, np.nan)
    if config.fill == "same_close":
        size[:] = decisions
    else:
        size[1:] = decisions[:-1]
    price = market.open if config.fill == "next_open" else market.close
    index = pd.DatetimeIndex(market.timestamps.to_numpy())
    columns = market.assets.to_list()

    def wide(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a, index=index, columns=columns)

    return dict(
        close=wide(market.close), size=wide(size), price=wide(price),
        size_type="targetpercent", direction="both" if config.allow_short else "longonly",
        fees=config.fees, fixed_fees=config.fixed_fee, slippage=config.slippage,
        size_granularity=1.0 if config.integer_shares else np.nan, min_size=1e-10,
        init_cash=config.initial_cash, cash_sharing=True, group_by=True, call_seq="auto",
        freq="1D",
    )


def normalize(portfolio, market: Market) -> PeerResult:
    """vectorbt order records and value series as our fills and equity tables."""
    rec = portfolio.orders.records_arr
    quantity = np.where(rec["side"] == 0, rec["size"], -rec["size"])
    fills = pl.DataFrame(
        {
            "timestamp": market.timestamps.gather(rec["idx"]),
            "asset": market.assets.gather(rec["col"]),
            "quantity": quantity.astype(np.float64),
            "price": rec["price"].astype(np.float64),
            "fee": rec["fees"].astype(np.float64),
            "order_id": rec["id"].astype(np.int64),
        }
    )
    cash = portfolio.cash().to_numpy().ravel()
    value = portfolio.value().to_numpy().ravel()
    equity = pl.DataFrame(
        {"timestamp": market.timestamps, "cash": cash, "positions_value": value - cash,
         "equity": value}
    )
    return PeerResult(fills, equity)


def run_vectorbt(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig | None = None,
    engine: str = "auto",
) -> PeerResult:
    """Run vectorbt on the same inputs as `engine.run_backtest` and normalize the result."""
    import vectorbt as vbt

    config = config or BacktestConfig()
    bars = load_prices(prices)
    targets = load_weights(weights, bars, allow_short=config.allow_short,
                           allow_leverage=config.allow_leverage)
    market = Market.from_bars(bars)
    portfolio = vbt.Portfolio.from_orders(**vectorbt_inputs(market, targets, config),
                                          engine=engine)
    return normalize(portfolio, market)
