"""tradegap's engine: plain library code (no orchestration) for trustworthy backtests.

`run_backtest(prices, weights, config)` runs target weights through the one-ledger,
phase-ordered loop; `run_orders` runs a table of orders (market, limit, stop, ...);
`run_strategy` runs any batch-callback strategy; `run_reference` is the independent plain
implementation the engine is checked against. `market_of(prices)` validates and pivots
prices once, for many runs.
"""

from engine.backtest import market_of, run_backtest, run_orders, run_strategy
from engine.core.config import BacktestConfig
from engine.core.context import Context
from engine.core.strategy import Strategy, TargetWeights
from engine.errors import InputError
from engine.results.tables import BacktestResult

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Context",
    "InputError",
    "Strategy",
    "TargetWeights",
    "market_of",
    "run_backtest",
    "run_orders",
    "run_strategy",
]
