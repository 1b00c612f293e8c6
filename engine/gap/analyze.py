"""Explain the gap between two backtests: every fault, where it starts and ends, its cost.

Side A is the trusted side. The analysis is a list of stages over one `Analysis` state
(engine/gap/stages/), each adding its part:
1. `read`: compares the two fill logs per (timestamp, asset) (`compare`) and reads what
   each log shows directly: price point, slippage, fees, rounding (`observe`);
2. `decide`: takes the decisions from the weights, or infers them from A's own book
   (`decisions`);
3. `diagnose`: each side bar by bar from its own book (`diagnose`): B always, A too when
   weights are given (where A does not follow them);
4. `attribute`: splits the equity gap by cause with counterfactual replays (`attribute`);
5. `label`: every divergent key with the causes that made it differ, or `propagated` when
   the side did what the trusted rules say from the book it had;
6. `report`: turns the per-bar verdicts into faults with an onset, an end if they stop,
   and the bars they touched, and sums it all up.
When no key differs, only `read` and `report` run.
"""

from __future__ import annotations

import polars as pl

from engine.gap.collector import collector_paused
from engine.gap.stages.attribute import attribute
from engine.gap.stages.decide import decide
from engine.gap.stages.diagnose import diagnose
from engine.gap.stages.label import label
from engine.gap.stages.read import read
from engine.gap.stages.report import report
from engine.gap.stages.state import DEFAULT_TOLERANCE, GAP_COLUMNS, Analysis, GapAnalysis, Side
from engine.results.compare import Tolerance

__all__ = ["GAP_COLUMNS", "Analysis", "GapAnalysis", "Side", "analyze"]

DIAGNOSING = (decide, diagnose, attribute, label)  # between read and report, if a key differs


@collector_paused
def analyze(
    a: Side, b: Side, prices: pl.DataFrame, weights: pl.DataFrame | None = None,
    initial_cash: float = 1_000_000.0, tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> GapAnalysis:
    """Diagnose B against A (and A against the weights, if given) and explain the gap."""
    state = Analysis(a, b, prices, weights, initial_cash, tolerance)
    read(state)
    if not state.identical:
        for stage in DIAGNOSING:
            stage(state)
    report(state)
    return state.result
