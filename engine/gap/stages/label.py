"""Label: every divergent key with the causes that made it differ and on which side, or
`propagated` when the side did what the trusted rules say from the book it had."""

from __future__ import annotations

import polars as pl

from engine.gap.attribute import VISIBLE_CAUSE
from engine.gap.logs import FillLog
from engine.gap.observe import Observed
from engine.gap.stages.state import Analysis
from engine.gap.verdicts import Diagnosis, departures
from engine.results.compare import KEYS, Tolerance


def label(state: Analysis) -> None:
    """Fills `gap_fills`: every key of `joined` with its `cause`, `side` and `root` (reads
    the diagnoses and the causes the attribution carries)."""
    state.gap_fills = state.joined.join(_labels(state), on=KEYS, how="left").with_columns(
        pl.col("cause").fill_null("identical"), pl.col("side").fill_null(""),
        pl.col("root").fill_null(False))


def _labels(s: Analysis) -> pl.DataFrame:
    """For every divergent key: the causes that made it differ and on which side."""
    sides = [(name, log, diagnosis, observed, set(s.games[name][0].causes))
             for name, log, diagnosis, observed in
             (("A", s.log_a, s.diagnosis_a, s.observed_a),
              ("B", s.log_b, s.diagnosis_b, s.observed_b))
             if diagnosis is not None]
    rows = []
    by_stamp: dict = {}  # timestamp → its divergent assets, in order of first appearance
    for timestamp, asset in zip(s.divergent["timestamp"].to_list(),
                                s.divergent["asset"].to_list(), strict=True):
        by_stamp.setdefault(timestamp, []).append(asset)
    for timestamp, assets in by_stamp.items():
        t = s.bar_of[timestamp]
        found = {name: _bar_causes(t, assets, log, diagnosis, observed, s.tolerance,
                                   attributed)
                 for name, log, diagnosis, observed, attributed in sides}
        for asset in assets:
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
        "timestamp": s.divergent.schema["timestamp"], "asset": pl.String, "cause": pl.String,
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
            cause = element.cause if hasattr(element, "cause") else VISIBLE_CAUSE[element]
            if cause not in causes and cause in attributed:
                causes.append(cause)
        if consequence and not causes:
            continue
        if not causes:  # a one-off price or fee elsewhere in the bar changed its cash
            causes = sorted({c for p, f in overrides.values() for c, v in
                             (("fill_price", p), ("fee", f)) if v is not None})
        out[asset] = causes or ["unexplained"]
    return out


def _same(x: tuple | None, y: tuple | None, tolerance: Tolerance) -> bool:
    """Two keys (quantity, price, fee, rows) equal: rows exactly, the rest within
    `tolerance`."""
    if x is None or y is None:
        return x is None and y is None
    same = tolerance.same
    return x[3] == y[3] and same(x[0], y[0]) and same(x[1], y[1]) and same(x[2], y[2])
