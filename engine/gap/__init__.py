"""Trade-gap analysis: find where two backtests diverge, why, and what each cause cost.

`analyze` compares two fill logs at the fill level, labels each divergent (timestamp, asset)
as a root difference with a cause or as propagated, and splits the final-equity gap by cause.
"""
