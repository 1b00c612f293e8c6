"""Infer an engine's semantics from its fills: read what the log shows, then fit the rest.

The fill log shows the price basis and slippage (fill price against the bar's open and
close), the timing (fill bar against the decision bar), the cost model (fees against
notional, shares and a constant), integer shares and duplicated rows. What it does not show
(how the book was valued, which position a target was netted against, whether fees left
cash, the order of sells and buys, the cash policy) is fitted by replaying candidate
semantics and keeping the one that reproduces the most of the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.gap.compare import Tolerance, mismatches
from engine.gap.replay import Market, Run, replay
from engine.gap.semantics import Semantics

CANDIDATES = (
    ("position_basis", "zero"),
    ("position_basis", "previous"),
    ("valuation", "decision_close"),
    ("fees_in_cash", False),
    ("sequence", "buys_first"),
    ("cash_policy", "reject"),
    ("cash_policy", "allow_negative"),
    ("rounding", "floor"),
)


@dataclass(frozen=True)
class Fit:
    """Semantics fitted to a fill log, the replay under them, and what is left unmatched."""

    semantics: Semantics
    run: Run
    residual: pl.DataFrame

    @property
    def exact(self) -> bool:
        return self.residual.height == 0


def read_semantics(fills: pl.DataFrame, prices: pl.DataFrame,
                   decisions: pl.Series | None) -> Semantics:
    """Timing, slippage, costs, rounding and duplicates, as the fill log shows them."""
    if fills.height == 0:
        return Semantics()
    bars = fills.join(prices.select("timestamp", "asset", "open", "close"),
                      on=["timestamp", "asset"], how="left")
    buys = bars.filter(pl.col("quantity") > 0)
    sample = buys if buys.height else bars
    on_open = (sample["price"] / sample["open"]).to_numpy()
    on_close = (sample["price"] / sample["close"]).to_numpy()
    if np.ptp(on_open) <= 1e-9 * np.abs(on_open).max():
        fill, slip = "next_open", on_open.mean() - 1
    else:
        at_decision = decisions is not None and bool(
            fills["timestamp"].is_in(decisions.implode()).mean() > 0.5)
        fill = "same_close" if at_decision else "next_close"
        slip = on_close.mean() - 1
    slippage = float(round(abs(slip), 12))
    quantity = fills["quantity"].abs().to_numpy()
    notional = quantity * fills["price"].to_numpy()
    design = np.column_stack([notional, quantity, np.ones_like(quantity)])
    coef = np.linalg.lstsq(design, fills["fee"].to_numpy(), rcond=None)[0]
    floors = (1e-10, 1e-8, 1e-6)  # below these a fitted rate, per-share or fixed fee is noise
    fees, per_share, fixed_fee = (float(round(c, 12)) if abs(c) > floor else 0.0
                                  for c, floor in zip(coef, floors, strict=True))
    integral = bool(np.all(np.abs(quantity - np.round(quantity)) <= 1e-9))
    duplicated = bool(
        fills.group_by("timestamp", "asset", "quantity", "price").len()["len"].max() > 1)
    return Semantics(fill=fill, slippage=slippage, fees=max(fees, 0.0),
                     per_share=max(per_share, 0.0), fixed_fee=max(fixed_fee, 0.0),
                     rounding="truncate" if integral else "none", duplicate_fills=duplicated)


def fit_semantics(
    fills: pl.DataFrame, market: Market, initial_cash: float, start: Semantics,
    tolerance: Tolerance, max_rounds: int = 3,
) -> Fit:
    """Semantics that reproduce `fills` by replay: `start`, then single changes that help."""
    def score(semantics: Semantics) -> tuple[tuple[int, int], Run, pl.DataFrame]:
        run = replay(market, semantics, initial_cash)
        left = mismatches(fills, run.fills_frame(), tolerance)
        first = (market.timestamps.index(left["timestamp"][0]) if left.height
                 else len(market.timestamps))
        return (first, -left.height), run, left

    best, run, left = score(start)
    semantics = start
    for _ in range(max_rounds):
        if left.height == 0:
            break
        trials = [semantics.with_(**{name: value}) for name, value in CANDIDATES
                  if getattr(semantics, name) != value]
        scored = [(score(trial), trial) for trial in trials]
        (trial_best, trial_run, trial_left), trial = max(scored, key=lambda s: s[0][0])
        if trial_best <= best:
            break
        best, run, left, semantics = trial_best, trial_run, trial_left, trial
    return Fit(semantics, run, left)
