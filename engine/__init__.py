"""tradegap's engine: plain library code (no orchestration) for trustworthy backtests.

`run_backtest(prices, weights, config)` runs target weights through the one-ledger,
phase-ordered loop; `run_orders` runs a table of orders (market, limit, stop, ...);
`run_strategy` runs any batch-callback strategy; `run_reference` is the independent plain
implementation the engine is checked against. `market_of(prices)` validates and pivots
prices once, for many runs.

The names are imported on first use, so `import engine.core.config` (the command line's
first import) does not load numba, polars and pandera.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # where each name lives, for readers and the import-graph tools
    from engine.backtest import market_of, run_backtest, run_orders, run_strategy
    from engine.core.config import BacktestConfig
    from engine.core.context import Context
    from engine.core.strategy import Strategy, TargetWeights
    from engine.errors import InputError
    from engine.results.tables import BacktestResult

_HOMES = {
    "market_of": "engine.backtest", "run_backtest": "engine.backtest",
    "run_orders": "engine.backtest", "run_strategy": "engine.backtest",
    "BacktestConfig": "engine.core.config", "Context": "engine.core.context",
    "Strategy": "engine.core.strategy", "TargetWeights": "engine.core.strategy",
    "InputError": "engine.errors", "BacktestResult": "engine.results.tables",
}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)

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
