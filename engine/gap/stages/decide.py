"""Decide: the trusted rules (A's, or the contract's, with what A's fills show) and the
decisions both sides acted on: the weights, or inferred from A's own book (`decisions`)."""

from __future__ import annotations

from engine.gap import decisions as decided
from engine.gap.diagnose import Diagnoser
from engine.gap.stages.state import Analysis
from engine.reference import Rules


def decide(state: Analysis) -> None:
    """Fills `trusted`, `excused` and `decisions` (reads the logs and what they show)."""
    a, bars = state.a, state.bars
    state.trusted = (a.rules or Rules()).with_(**state.observed_a.rules_at(-1))
    if state.weighted:
        state.decisions = decided.given(bars, state.weights)
        return
    state.excused = decided.unknown(bars, state.log_a, state.log_b)
    exits = decided.exit_rows(a.fills, state.log_a, bars, state.trusted, state.observed_a)
    state.trusted, state.decisions = _inferred(state, exits)


def _inferred(s: Analysis, exits: dict[int, set[int]]) -> tuple[Rules, dict]:
    """Decisions inferred from A's book. How A values a held asset that has no bar is not
    in its log; when A's rules are not given and that choice changes the decisions, the
    one under which B's own fills are reproduced most often is taken."""
    bars, trusted = s.bars, s.trusted
    decisions = decided.inferred(s.log_a, bars, trusted, exits)
    if s.a.rules is not None:
        return trusted, decisions
    other = trusted.with_(held_valuation="last_fill_price"
                          if trusted.held_valuation == "last_close" else "last_close")
    alternative = decided.inferred(s.log_a, bars, other, exits)
    if alternative == decisions:
        return trusted, decisions
    scored = []
    for rules, found in ((trusted, decisions), (other, alternative)):
        diagnoser = Diagnoser(s.log_b, bars, found, rules, s.observed_b, s.tolerance,
                              excused=s.excused)
        scored.append((diagnoser.reproduced(frozenset(), diagnoser.books), rules, found))
    _, rules, found = max(scored, key=lambda s: s[0])
    return rules, found
