"""What a backtest produces, derived from its fills: tables, trades, metrics, checks and
atomic artifact writing."""
