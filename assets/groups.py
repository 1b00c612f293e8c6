"""Asset groups, one per pipeline stage: data → signals → backtest → report / compare."""

DATA = "data"
SIGNALS = "signals"
BACKTEST = "backtest"
REPORT = "report"
COMPARE = "compare"  # trade-gap analysis between backtests lives in this group
SWEEP = "sweep"
PEERS = "peers"  # real peer engines beside the engine under their profiles

BACKTEST_ASSETS = ("backtest_engine", "backtest_reference")
