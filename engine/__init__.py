"""tradegap's engine: plain library code (no orchestration) for trustworthy backtests.

`run_backtest(prices, weights, config)` runs target weights through the one-ledger,
phase-ordered loop; `run_strategy` runs any batch-callback strategy; `run_reference` is the
independent plain implementation the engine is checked against.
"""

from engine.backtest import run_backtest, run_strategy
from engine.config import BacktestConfig
from engine.context import Context
from engine.errors import InputError
from engine.results import BacktestResult
from engine.strategy import Strategy, TargetWeights

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Context",
    "InputError",
    "Strategy",
    "TargetWeights",
    "run_backtest",
    "run_strategy",
]
