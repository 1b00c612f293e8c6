"""Diagnose: each side bar by bar from its own book (`engine.gap.diagnose.Diagnoser`): B
always, A too when weights are given (where A does not follow them). A's own semantics
(switches it follows from its first fills on) join the trusted rules first: B's first pass
runs beside A's diagnosis (on a second core, `fork.both`) and again if they do."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from engine.gap.diagnose import Diagnoser
from engine.gap.fork import both
from engine.gap.observe import Observed, observe
from engine.gap.search import START_WINDOW
from engine.gap.stages.state import Analysis
from engine.gap.verdicts import Diagnosis
from engine.gap.vocabulary import in_order
from engine.reference import Rules

DECISION_LAG = 4  # bars before B's first difference re-run: its decision came up to 3 before
MISSING_BAR_FIELDS = {"drop_without_bar", "held_valuation"}


def diagnose(state: Analysis) -> None:
    """Fills `diagnosis_a` (with weights), `diagnosis_b`; may fold A's own semantics into
    `trusted` and read `observed_b` again without B's fills that answer no decision."""
    s = state
    same_until = max(min(s.label_bars) - DECISION_LAG, 0)

    def first_pass(trusted: Rules) -> Diagnosis:
        return Diagnoser(s.log_b, s.bars, s.decisions, trusted, s.observed_b, s.tolerance,
                         s.label_bars, s.excused, same_until, settle=True).run()

    if s.weighted:  # A (and its own semantics) beside B's first pass, on a second core
        def side_a() -> tuple[Rules, Diagnosis]:
            return _fold_global(s, Diagnoser(s.log_a, s.bars, s.decisions, s.trusted,
                                             s.observed_a, s.tolerance, s.label_bars).run())

        (trusted, s.diagnosis_a), s.diagnosis_b = both(side_a,
                                                       lambda: first_pass(s.trusted))
        if trusted != s.trusted:  # A's own semantics joined the trusted rules: B again
            s.trusted = trusted
            s.diagnosis_b = first_pass(trusted)
    else:
        s.diagnosis_b = first_pass(s.trusted)
    if s.diagnosis_b.undecided:  # B's own exits (a first pass, which may stop once their
        # rule is named): its visible models without them, again
        s.observed_b = _without_undecided(s)
        s.diagnosis_b = Diagnoser(s.log_b, s.bars, s.decisions, s.trusted, s.observed_b,
                                  s.tolerance, s.label_bars, s.excused, same_until).run()


def _without_undecided(s: Analysis) -> Observed:
    """B's visible models read from the fills that answer a decision; with the exit rule
    the others follow, when the reference can replay it (it then arms B's entries from the
    rule's first one on, and its exit fills are left out of the price model as any rule's
    exits are)."""
    fills, bars, bar_of, diagnosis = s.b.fills, s.bars, s.bar_of, s.diagnosis_b
    keys = pl.DataFrame([(t, a) for t, by_asset in diagnosis.undecided.items()
                         for a in by_asset], orient="row", schema={"bar": pl.Int64,
                                                                   "asset": pl.String})
    stamps = pl.DataFrame({"timestamp": list(bar_of), "bar": list(bar_of.values())},
                          schema={"timestamp": fills.schema["timestamp"], "bar": pl.Int64})
    decided = fills.join(keys.join(stamps, on="bar").drop("bar"), on=["timestamp", "asset"],
                         how="anti", maintain_order="left")
    rule = diagnosis.exit_rule
    if not rule.fields:
        return replace(observe(decided, bars, bar_of, s.position_rules),
                       exits_at_open=rule.at_open)
    if "trigger" not in decided.columns:  # the rule's exits at the decisions' bars too
        made = pl.DataFrame([(t, a) for t, a in diagnosis.rule_exits], orient="row",
                            schema={"bar": pl.Int64, "asset": pl.String})
        made = made.join(stamps, on="bar").drop("bar").with_columns(trigger=pl.lit("exit"))
        decided = decided.join(made, on=["timestamp", "asset"], how="left",
                               maintain_order="left").with_columns(
            pl.col("trigger").fill_null("market"))
    return replace(observe(decided, bars, bar_of, True), exit_fields=rule.fields,
                   exit_since=rule.since, exit_words=rule.words,
                   exit_bars=tuple(sorted({*diagnosis.undecided,
                                           *(t for t, _ in diagnosis.rule_exits)})))


def _fold_global(s: Analysis, diagnosis: Diagnosis) -> tuple[Rules, Diagnosis]:
    """A's own rules: switches A follows from its first fills to the end (or, for what an
    engine does with missing bars, from the first missing bar that mattered) are A's
    semantics, not faults; they join the trusted rules and A is diagnosed again. What
    remains are the places where A does not follow the weights."""
    trusted = s.trusted
    verdicts = [diagnosis.verdicts[t] for t in sorted(diagnosis.verdicts)]
    early = set(s.log_a.fill_bars[:START_WINDOW])
    folded = []
    for switch in in_order({s for v in verdicts for s in v.switches if not s.state}):
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
    return trusted, Diagnoser(s.log_a, s.bars, s.decisions, trusted, s.observed_a,
                              s.tolerance, s.label_bars).run()
