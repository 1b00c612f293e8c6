"""Research steps before a backtest: features, walk-forward scores and target weights."""
