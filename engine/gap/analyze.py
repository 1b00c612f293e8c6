"""Explain the gap between two backtests: every fault, where it starts and ends, its cost.

Side A is the trusted side. The analysis
1. compares the two fill logs per (timestamp, asset) (`compare`);
2. reads what each log shows directly: price point, slippage, fees, rounding (`observe`);
3. takes the decisions from the weights, or infers them from A's own book (`decisions`);
4. diagnoses each side bar by bar from its own book (`diagnose`): B always, A too when
   weights are given (where A does not follow them);
5. labels every divergent key with the causes that made it differ, or `propagated` when
   the side did what the trusted rules say from the book it had;
6. splits the equity gap by cause with counterfactual replays (`attribute`);
7. turns the per-bar verdicts into faults with an onset, an end if they stop, and the
   bars they touched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from engine.gap import decisions as decided
from engine.gap.attribute import Game, Marks
from engine.gap.collector import collector_paused
from engine.gap.diagnose import START_WINDOW, Diagnoser, Diagnosis, departures
from engine.gap.events import Fault, faults_of
from engine.gap.logs import FillLog
from engine.gap.observe import Observed, observe
from engine.gap.vocabulary import CAUSES
from engine.reference import Bars, Rules
from engine.results.compare import KEYS, Tolerance, join_sides

EXPLAINED_SHARE = 0.99
DECISION_LAG = 4  # bars before B's first difference re-run: its decision came up to 3 before
DEFAULT_TOLERANCE = Tolerance()


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


GAP_COLUMNS = ["timestamp", "asset", "quantity_a", "price_a", "fee_a", "rows_a",
               "quantity_b", "price_b", "fee_b", "rows_b", "quantity_diff", "price_diff",
               "fee_diff", "divergent", "cause", "side", "root"]


@collector_paused
def analyze(
    a: Side, b: Side, prices: pl.DataFrame, weights: pl.DataFrame | None = None,
    initial_cash: float = 1_000_000.0, tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> GapAnalysis:
    """Diagnose B against A (and A against the weights, if given) and explain the gap."""
    joined = join_sides(a.fills, b.fills, tolerance)
    bars = Bars.from_frame(prices)
    bar_of = {t: i for i, t in enumerate(bars.timestamps)}
    log_a = FillLog(a.fills, bars, initial_cash)
    log_b = FillLog(b.fills, bars, initial_cash)
    marks = Marks(bars)
    equity_a = marks.equity(_fills(log_a), initial_cash)
    equity_b = marks.equity(_fills(log_b), initial_cash)
    divergent = joined.filter(pl.col("divergent"))
    if divergent.height == 0:
        return _identical(joined, a, b, bars, equity_a, equity_b, weights is not None)

    position_rules = bool(a.rules and a.rules.position_rules)
    observed_a = observe(a.fills, prices, bar_of, position_rules)
    observed_b = observe(b.fills, prices, bar_of, position_rules)
    trusted = (a.rules or Rules()).with_(**observed_a.rules_at(-1))
    label_bars = {bar_of[t] for t in divergent["timestamp"].unique().to_list()}
    excused = {} if weights is not None else decided.unknown(bars, log_a, log_b)
    if weights is not None:
        decisions = decided.given(bars, weights)
    else:
        exits = decided.exit_rows(a.fills, log_a, bars, trusted, observed_a)
        trusted, decisions = _inferred(log_a, log_b, bars, trusted, observed_b, tolerance,
                                       excused, a.rules is None, exits)

    diagnosis_a = None
    if weights is not None:
        diagnosis_a = Diagnoser(log_a, bars, decisions, trusted, observed_a, tolerance,
                                label_bars).run()
        trusted, diagnosis_a = _fold_global(trusted, diagnosis_a, log_a, bars, decisions,
                                            observed_a, tolerance, label_bars)
    same_until = max(min(label_bars) - DECISION_LAG, 0)
    diagnosis_b = Diagnoser(log_b, bars, decisions, trusted, observed_b, tolerance,
                            label_bars, excused, same_until).run()
    if diagnosis_b.undecided:  # B's own exits: its visible models without them, again
        observed_b = _without_undecided(b.fills, prices, bar_of, diagnosis_b,
                                        position_rules)
        diagnosis_b = Diagnoser(log_b, bars, decisions, trusted, observed_b, tolerance,
                                label_bars, excused, same_until).run()

    game_b = Game(bars, decisions, trusted, observed_b, diagnosis_b, log_b, initial_cash,
                  marks)
    amounts_b, per_bar_b = game_b.amounts()
    games = {"B": (game_b, amounts_b, per_bar_b, equity_b)}
    if diagnosis_a is not None:
        game_a = Game(bars, decisions, trusted, observed_a, diagnosis_a, log_a,
                      initial_cash, marks)
        game_a.share_baseline(game_b)
        amounts_a, per_bar_a = game_a.amounts()
        games["A"] = (game_a, amounts_a, per_bar_a, equity_a)
    attribution, curves = _attribution(games, equity_a, equity_b, bars)
    labels = _labels(divergent, bar_of, log_a, log_b, diagnosis_a, diagnosis_b,
                     observed_a, observed_b, tolerance, games)
    gap_fills = joined.join(labels, on=KEYS, how="left").with_columns(
        pl.col("cause").fill_null("identical"), pl.col("side").fill_null(""),
        pl.col("root").fill_null(False))
    faults = faults_of("B", diagnosis_b, observed_b, trusted, log_b, bars, per_bar_b)
    if diagnosis_a is not None:
        faults = faults_of("A", diagnosis_a, observed_a, trusted, log_a, bars,
                           {c: -v for c, v in games["A"][2].items()}) + faults
    summary = _summary(gap_fills, faults, attribution, equity_a, equity_b, a, b, trusted,
                       weights is not None)
    return GapAnalysis(gap_fills.select(GAP_COLUMNS), faults, summary, curves)


def _without_undecided(fills: pl.DataFrame, prices: pl.DataFrame, bar_of: dict,
                       diagnosis: Diagnosis, exits: bool) -> Observed:
    """A side's visible models read from the fills that answer a decision; with the exit
    rule the others follow, when the reference can replay it (it then arms the side's
    entries from the rule's first one on, and its exit fills are left out of the price
    model as any rule's exits are)."""
    keys = pl.DataFrame([(t, a) for t, by_asset in diagnosis.undecided.items()
                         for a in by_asset], orient="row", schema={"bar": pl.Int64,
                                                                   "asset": pl.String})
    stamps = pl.DataFrame({"timestamp": list(bar_of), "bar": list(bar_of.values())},
                          schema={"timestamp": fills.schema["timestamp"], "bar": pl.Int64})
    decided = fills.join(keys.join(stamps, on="bar").drop("bar"), on=["timestamp", "asset"],
                         how="anti", maintain_order="left")
    rule = diagnosis.exit_rule
    if not rule.fields:
        return observe(decided, prices, bar_of, exits)
    return replace(observe(decided, prices, bar_of, True), exit_fields=rule.fields,
                   exit_since=rule.since, exit_words=rule.words,
                   exit_bars=tuple(sorted(diagnosis.undecided)))


def _fills(log: FillLog) -> list[tuple]:
    return [(bar, a, q, p, f) for bar in log.fill_bars for a, q, p, f in log.rows[bar]]


def _inferred(log_a: FillLog, log_b: FillLog, bars: Bars, trusted: Rules,
              observed_b: Observed, tolerance: Tolerance, excused: dict, unknown_rules: bool,
              exits: dict[int, set[int]] | None = None) -> tuple[Rules, dict]:
    """Decisions inferred from A's book. How A values a held asset that has no bar is not
    in its log; when A's rules are not given and that choice changes the decisions, the
    one under which B's own fills are reproduced most often is taken."""
    decisions = decided.inferred(log_a, bars, trusted, exits)
    if not unknown_rules:
        return trusted, decisions
    other = trusted.with_(held_valuation="last_fill_price"
                          if trusted.held_valuation == "last_close" else "last_close")
    alternative = decided.inferred(log_a, bars, other, exits)
    if alternative == decisions:
        return trusted, decisions
    scored = []
    for rules, found in ((trusted, decisions), (other, alternative)):
        diagnoser = Diagnoser(log_b, bars, found, rules, observed_b, tolerance,
                              excused=excused)
        scored.append((diagnoser.reproduced(frozenset(), diagnoser.books), rules, found))
    _, rules, found = max(scored, key=lambda s: s[0])
    return rules, found


def _fold_global(trusted: Rules, diagnosis: Diagnosis, log: FillLog, bars: Bars,
                 decisions: dict, observed: Observed, tolerance: Tolerance,
                 label_bars: set[int]) -> tuple[Rules, Diagnosis]:
    """A's own rules: switches A follows from its first fills to the end (or, for what an
    engine does with missing bars, from the first missing bar that mattered) are A's
    semantics, not faults; they join the trusted rules and A is diagnosed again. What
    remains are the places where A does not follow the weights."""
    verdicts = [diagnosis.verdicts[t] for t in sorted(diagnosis.verdicts)]
    early = set(log.fill_bars[:START_WINDOW])
    folded = []
    for switch in {s for v in verdicts for s in v.switches if not s.state}:
        touched = [v.bar for v in verdicts if diagnosis.touched(switch, v.bar)]
        if not touched:
            continue
        kept = all(switch in v.switches for v in verdicts if v.bar >= touched[0]
                   and not v.unexplained)
        missing_bars = {name for name, _ in switch.changes} <= MISSING_BAR_FIELDS
        if kept and (touched[0] in early or missing_bars):
            folded.append(switch)
    if not folded:
        return trusted, diagnosis
    for switch in sorted(folded, key=lambda s: s.words):
        trusted = switch.apply(trusted)
    return trusted, Diagnoser(log, bars, decisions, trusted, observed, tolerance,
                              label_bars).run()


MISSING_BAR_FIELDS = {"drop_without_bar", "held_valuation"}


def _labels(divergent: pl.DataFrame, bar_of: dict, log_a: FillLog, log_b: FillLog,
            diagnosis_a: Diagnosis | None, diagnosis_b: Diagnosis, observed_a: Observed,
            observed_b: Observed, tolerance: Tolerance, games: dict) -> pl.DataFrame:
    """For every divergent key: the causes that made it differ and on which side."""
    sides = [(name, log, diagnosis, observed, set(games[name][0].causes))
             for name, log, diagnosis, observed in
             (("A", log_a, diagnosis_a, observed_a), ("B", log_b, diagnosis_b, observed_b))
             if diagnosis is not None]
    rows = []
    for (timestamp,), keys in divergent.group_by("timestamp", maintain_order=True):
        t = bar_of[timestamp]
        found = {name: _bar_causes(t, keys["asset"].to_list(), log, diagnosis, observed,
                                   tolerance, attributed)
                 for name, log, diagnosis, observed, attributed in sides}
        for asset in keys["asset"].to_list():
            causes: list[str] = []
            names = []
            for name, by_asset in found.items():
                if by_asset.get(asset):
                    names.append(name)
                    causes += [c for c in by_asset[asset] if c not in causes]
            if causes:
                rows.append((timestamp, asset, "+".join(causes), "+".join(names), True))
            else:
                rows.append((timestamp, asset, "propagated", "", False))
    return pl.DataFrame(rows, orient="row", schema={
        "timestamp": divergent.schema["timestamp"], "asset": pl.String, "cause": pl.String,
        "side": pl.String, "root": pl.Boolean})


def _bar_causes(t: int, assets: list[str], log: FillLog, diagnosis: Diagnosis,
                observed: Observed, tolerance: Tolerance, attributed: set[str]
                ) -> dict[str, list[str]]:
    """Why this side's fills at bar t are not what the trusted rules make of its book:
    per asset, the departures that change its fill (empty: it followed them). Only causes
    the attribution carries label a fill (`attributed`), so that labels and amounts agree;
    a fill only they would explain is unexplained."""
    verdict = diagnosis.verdicts[t]
    actual = log.by_bar.get(t, {})
    trusted = diagnosis.trusted_fills.get(t, {})
    overrides = observed.overrides.get(t, {})
    without = diagnosis.left_out(t)
    elements = list(without) if without else departures(t, verdict.switches, observed,
                                                         diagnosis.trusted_rules)
    out = {}
    undecided = diagnosis.undecided.get(t, {})
    for asset in assets:
        if asset in undecided:  # answers no decision: the exit rule, or unexplained
            out[asset] = [diagnosis.exit_rule.cause]
            continue
        if asset in verdict.unexplained:
            out[asset] = ["unexplained"]
            continue
        mine = actual.get(asset)
        if _same(mine, trusted.get(asset), tolerance):
            continue
        causes = []
        price, fee = overrides.get(asset, (None, None))
        if price is not None:
            causes.append("fill_price")
        if fee is not None:
            causes.append("fee")
        needed = [e for e in elements if without
                  and not _same(mine, without[e].get(asset), tolerance)] or elements
        consequence = False
        for element in needed:
            if element in diagnosis.consequences:
                consequence = True  # counted under its root, a fill it propagated
                continue
            cause = element.cause if hasattr(element, "cause") else _VISIBLE_CAUSE[element]
            if cause not in causes and cause in attributed:
                causes.append(cause)
        if consequence and not causes:
            continue
        if not causes:  # a one-off price or fee elsewhere in the bar changed its cash
            causes = sorted({c for p, f in overrides.values() for c, v in
                             (("fill_price", p), ("fee", f)) if v is not None})
        out[asset] = causes or ["unexplained"]
    return out


_VISIBLE_CAUSE = {"point": "timing", "slippage": "fill_price", "rounding": "rounding",
                  "fees": "fee", "exit_rule": "exit_rule"}


def _same(x: tuple | None, y: tuple | None, tolerance: Tolerance) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return x[3] == y[3] and all(tolerance.same(p, q) for p, q in zip(x[:3], y[:3],
                                                                       strict=True))


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


def _identical(joined: pl.DataFrame, a: Side, b: Side, bars: Bars, equity_a: np.ndarray,
               equity_b: np.ndarray, weighted: bool) -> GapAnalysis:
    gap_fills = joined.with_columns(cause=pl.lit("identical"), side=pl.lit(""),
                                    root=pl.lit(False))
    summary = _summary(gap_fills, [], {}, equity_a, equity_b, a, b, None, weighted)
    curves = pl.DataFrame({"timestamp": bars.timestamps, "equity_a": equity_a,
                           "equity_b": equity_b})
    return GapAnalysis(gap_fills.select(GAP_COLUMNS), [], summary, curves)


def _summary(gap_fills: pl.DataFrame, faults: list[Fault], attribution: dict[str, float],
             equity_a: np.ndarray, equity_b: np.ndarray, a: Side, b: Side,
             trusted: Rules | None, weighted: bool) -> dict[str, Any]:
    divergent = gap_fills.filter(pl.col("divergent"))
    counts: dict[str, int] = {}
    for cause in divergent["cause"].to_list():
        for part in cause.split("+"):
            counts[part] = counts.get(part, 0) + 1
    first = None
    if divergent.height:
        row = divergent.row(0, named=True)
        first = {k: row[k] for k in ("timestamp", "asset", "cause", "side", "quantity_a",
                                     "quantity_b", "price_a", "price_b", "fee_a", "fee_b")}
    final_a, final_b = float(equity_a[-1]), float(equity_b[-1])
    total = final_b - final_a
    unexplained = abs(attribution.get("unexplained", 0.0))
    if divergent.height == 0 and abs(total) <= 1e-9 * max(abs(final_a), 1.0):
        verdict = "identical"
    elif counts.get("unexplained", 0) == 0 and unexplained <= (1 - EXPLAINED_SHARE) * abs(total):
        verdict = "explained"
    else:
        verdict = "unexplained"
    return {
        "a": a.name, "b": b.name,
        "verdict": verdict,
        "decisions": "weights" if weighted else "inferred from A",
        "first_divergence": first,
        "faults": [fault.to_dict(total) for fault in faults],
        "causes": {c: counts[c] for c in CAUSES if c in counts},
        "root_causes": {c: counts[c] for c in CAUSES if c in counts and c != "propagated"},
        "attribution": attribution,
        "final_equity": {"a": final_a, "b": final_b, "gap": total},
        "fills": {"a": int(a.fills.height), "b": int(b.fills.height),
                  "divergent_keys": int(divergent.height)},
        "trusted_rules": trusted.to_dict() if trusted is not None else None,
    }
