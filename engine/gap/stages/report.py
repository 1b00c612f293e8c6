"""Report: the per-bar verdicts turned into faults with an onset, an end if they stop and
the bars they touched (`events`), the summary (verdict, counts, attribution, first
divergence), and the `GapAnalysis` the analysis returns."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.gap.events import Fault, faults_of
from engine.gap.stages.state import GAP_COLUMNS, Analysis, GapAnalysis, Side
from engine.gap.vocabulary import CAUSES
from engine.reference import Rules

EXPLAINED_SHARE = 0.99


def report(state: Analysis) -> None:
    """Fills `faults`, `summary` and `result` (every key identical: no fault, no cause)."""
    s = state
    if s.identical:
        s.gap_fills = s.joined.with_columns(cause=pl.lit("identical"), side=pl.lit(""),
                                            root=pl.lit(False))
        s.summary = _summary(s.gap_fills, [], {}, s.equity_a, s.equity_b, s.a, s.b, None,
                             s.weighted)
        s.curves = pl.DataFrame({"timestamp": s.bars.timestamps, "equity_a": s.equity_a,
                                 "equity_b": s.equity_b})
        s.result = GapAnalysis(s.gap_fills.select(GAP_COLUMNS), [], s.summary, s.curves)
        return
    s.faults = faults_of("B", s.diagnosis_b, s.observed_b, s.trusted, s.log_b, s.bars,
                         s.games["B"][2])
    if s.diagnosis_a is not None:
        s.faults = faults_of("A", s.diagnosis_a, s.observed_a, s.trusted, s.log_a, s.bars,
                             {c: -v for c, v in s.games["A"][2].items()}) + s.faults
    s.summary = _summary(s.gap_fills, s.faults, s.attribution, s.equity_a, s.equity_b, s.a,
                         s.b, s.trusted, s.weighted)
    s.result = GapAnalysis(s.gap_fills.select(GAP_COLUMNS), s.faults, s.summary, s.curves)


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
