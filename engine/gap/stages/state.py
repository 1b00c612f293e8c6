"""The analysis state: one object the stages read and fill, and what the analysis returns.

Each stage (engine/gap/stages/) takes the `Analysis` and adds its part; a field stays None
until the stage that fills it has run (the stage's module says which fields it reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from engine.gap.attribute import Marks
from engine.gap.events import Fault
from engine.gap.logs import FillLog
from engine.gap.observe import Observed
from engine.gap.verdicts import Diagnosis
from engine.reference import Bars, Rules
from engine.results.compare import Tolerance

DEFAULT_TOLERANCE = Tolerance()
GAP_COLUMNS = ["timestamp", "asset", "quantity_a", "price_a", "fee_a", "rows_a",
               "quantity_b", "price_b", "fee_b", "rows_b", "quantity_diff", "price_diff",
               "fee_diff", "divergent", "cause", "side", "root"]


@dataclass(frozen=True)
class Side:
    """One backtest as the analysis sees it: its fills, and its rules when they are known."""

    fills: pl.DataFrame
    equity: pl.DataFrame | None = None
    rules: Rules | None = None
    name: str = ""


@dataclass(frozen=True)
class GapAnalysis:
    """The comparison per key, the faults, the summary and per-bar series for the plot."""

    gap_fills: pl.DataFrame
    faults: list[Fault]
    summary: dict[str, Any]
    curves: pl.DataFrame  # timestamp, equity_a, equity_b, gap_<cause> (cumulative)


@dataclass
class Analysis:
    """B diagnosed against A (side A is the trusted side), stage by stage."""

    a: Side
    b: Side
    prices: pl.DataFrame
    weights: pl.DataFrame | None = None
    initial_cash: float = 1_000_000.0
    tolerance: Tolerance = DEFAULT_TOLERANCE
    # read: the two logs side by side, each on its own, and what they show directly
    joined: pl.DataFrame | None = None  # the fills per (timestamp, asset), `divergent` marked
    divergent: pl.DataFrame | None = None  # the divergent keys
    bars: Bars | None = None
    bar_of: dict = field(default_factory=dict)  # timestamp → bar
    log_a: FillLog | None = None
    log_b: FillLog | None = None
    marks: Marks | None = None
    equity_a: np.ndarray | None = None  # each side's equity after every bar
    equity_b: np.ndarray | None = None
    position_rules: bool = False  # A's rules close positions by rule
    observed_a: Observed | None = None  # price point, slippage, fees, rounding as seen
    observed_b: Observed | None = None
    label_bars: set[int] = field(default_factory=set)  # the bars with a divergent key
    # decide: the trusted rules and the decisions both sides acted on
    trusted: Rules | None = None
    excused: dict = field(default_factory=dict)  # bars whose decisions A's log cannot show
    decisions: dict = field(default_factory=dict)
    # diagnose: each side bar by bar from its own book (A only when weights are given)
    diagnosis_a: Diagnosis | None = None
    diagnosis_b: Diagnosis | None = None
    # attribute: the equity gap split by cause
    games: dict = field(default_factory=dict)  # side → (game, amounts, per bar, equity)
    attribution: dict[str, float] = field(default_factory=dict)
    curves: pl.DataFrame | None = None
    # label: every key with its causes
    gap_fills: pl.DataFrame | None = None
    # report
    faults: list[Fault] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    result: GapAnalysis | None = None

    @property
    def weighted(self) -> bool:
        """Decisions are given as weights (else inferred from A's book)."""
        return self.weights is not None

    @property
    def identical(self) -> bool:
        """No key differs: there is nothing to diagnose."""
        return self.divergent.height == 0
