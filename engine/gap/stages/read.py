"""Read: the two fill logs compared per (timestamp, asset), each read on its own against the
bars, and what each shows directly (price point, slippage, fees, rounding: `observe`); a
log that writes its fills as several executions each is read as one fill each."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from engine.gap.attribute import Marks
from engine.gap.logs import FillLog, executions_merged
from engine.gap.observe import observe
from engine.gap.stages.state import Analysis
from engine.reference import Bars
from engine.results.compare import join_sides


def read(state: Analysis) -> None:
    """Fills `joined`, `divergent`, `bars`, `bar_of`, the logs, marks and equity curves;
    when a key differs, also `position_rules`, `observed_a`, `observed_b`, `label_bars`."""
    state.a = a = replace(state.a, fills=executions_merged(state.a.fills))
    state.b = b = replace(state.b, fills=executions_merged(state.b.fills))
    state.joined = join_sides(a.fills, b.fills, state.tolerance)
    state.bars = bars = Bars.from_frame(state.prices)
    state.bar_of = {t: i for i, t in enumerate(bars.timestamps)}
    state.log_a = FillLog(a.fills, bars, state.initial_cash)
    state.log_b = FillLog(b.fills, bars, state.initial_cash)
    state.marks = Marks(bars)
    state.equity_a = state.marks.own(state.log_a)
    state.equity_b = state.marks.own(state.log_b)
    state.divergent = state.joined.filter(pl.col("divergent"))
    if state.identical:
        return
    state.position_rules = bool(a.rules and a.rules.position_rules)
    state.observed_a = observe(a.fills, state.bars, state.bar_of, state.position_rules)
    state.observed_b = observe(b.fills, state.bars, state.bar_of, state.position_rules)
    state.label_bars = {state.bar_of[t]
                        for t in state.divergent["timestamp"].unique().to_list()}

