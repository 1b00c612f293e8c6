"""Attribute: the equity gap split by cause with counterfactual replays
(`engine.gap.attribute.Game`), per side, and per-bar cumulative curves. It runs before the
labels: a fill is labelled only with causes the attribution carries, so that labels and
amounts agree."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.gap.attribute import Game
from engine.gap.stages.state import Analysis
from engine.gap.vocabulary import CAUSES
from engine.reference import Bars


def attribute(state: Analysis) -> None:
    """Fills `games` (side → game, amounts, amounts per bar, equity), `attribution` and
    `curves` (reads the diagnoses)."""
    s = state
    game_b = Game(s.bars, s.decisions, s.trusted, s.observed_b, s.diagnosis_b, s.log_b,
                  s.initial_cash, s.marks)
    game_a = None if s.diagnosis_a is None else Game(
        s.bars, s.decisions, s.trusted, s.observed_a, s.diagnosis_a, s.log_a,
        s.initial_cash, s.marks)
    if game_a is not None and game_a.use_own_run_as_baseline():  # A is the trusted rules' own run
        game_b.share_baseline(game_a)
    amounts_b, per_bar_b = game_b.amounts()
    s.games = {"B": (game_b, amounts_b, per_bar_b, s.equity_b)}
    if game_a is not None:
        game_a.share_baseline(game_b)
        amounts_a, per_bar_a = game_a.amounts()
        s.games["A"] = (game_a, amounts_a, per_bar_a, s.equity_a)
    s.attribution, s.curves = _attribution(s.games, s.equity_a, s.equity_b, s.bars)


def _attribution(games: dict, equity_a: np.ndarray, equity_b: np.ndarray, bars: Bars
                 ) -> tuple[dict[str, float], pl.DataFrame]:
    """Amounts per cause (A's with their sign flipped) adding up to B − A, and per-bar
    cumulative curves; what the replays miss of each side's own fills is unexplained."""
    amounts = {c: 0.0 for c in CAUSES}
    per_bar = {c: np.zeros(len(bars.timestamps)) for c in CAUSES}
    for side, (game, side_amounts, side_bars, equity) in games.items():
        sign = 1.0 if side == "B" else -1.0
        for cause, value in side_amounts.items():
            amounts[cause] += sign * value
            per_bar[cause] += sign * side_bars[cause]
        residual = equity - game.value(frozenset(game.causes))
        amounts["unexplained"] += sign * float(residual[-1])
        per_bar["unexplained"] += sign * residual
    if "A" not in games:  # without weights A is the trusted rules' own replay
        game_b = games["B"][0]
        residual = game_b.value(frozenset()) - equity_a
        amounts["unexplained"] += float(residual[-1])
        per_bar["unexplained"] += residual
    curves = pl.DataFrame({"timestamp": bars.timestamps, "equity_a": equity_a,
                           "equity_b": equity_b,
                           **{f"gap_{c}": v for c, v in per_bar.items() if np.any(v)}})
    return {c: v for c, v in amounts.items() if v != 0.0}, curves
