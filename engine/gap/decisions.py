"""The decisions both sides acted on: the target weights given, or inferred from side A.

Without weights, side A (the trusted side) tells what was decided: after each of its fill
bars it holds its targets, so the weight of an asset is its position after the batch at
the fill-point price over the book value before the batch (valued as its rules value it).
The decision is placed `delay` bars before the fill bar (A's own timing: the bar before, for
next-bar fills). Orders that waited for a missing bar cannot be told from decisions,
so assets without a bar at a fill bar or the bar before are left out of the comparison
there (`unknown`). A buy that A shrank to its last cash shows only what A could pay
for, not what was asked: it is taken to target the largest weight A traded to at that bar,
and it is the buy that weight asks the most of (the one a sells-first, ascending-value
sequence executes last).
"""

from __future__ import annotations

import polars as pl

from engine.gap.logs import FillLog, aggregate
from engine.gap.observe import Observed
from engine.gap.oracle import Oracle
from engine.reference import Bars, Book, Rebalance, Rules, decisions_from_weights
from engine.reference.bars import CLOSE, OPEN

SHRUNK = 1e-9  # cash left below this share of the book value: the last buy was shrunk
TIE = 1e-9  # inferred weights this close (relative) are one weight, so that they tie exactly


def given(bars: Bars, weights: pl.DataFrame) -> dict[int, list]:
    return decisions_from_weights(bars, weights)


def inferred(log: FillLog, bars: Bars, rules: Rules,
             exits: dict[int, set[int]] | None = None) -> dict[int, list]:
    """One `Rebalance` per fill bar of side A, placed at A's decision bar (`exits`: per
    bar, the rows that are the position rules' exits, no decision's)."""
    point = OPEN if rules.point == "open" else CLOSE
    held = point if rules.held_valuation == "last_fill_price" else CLOSE
    decisions: dict[int, list] = {}
    for book in log.books():
        batch = log.by_bar.get(book.bar)
        if exits and book.bar in exits and batch:
            skip = exits[book.bar]
            batch = aggregate([r for i, r in enumerate(log.rows[book.bar]) if i not in skip])
        if not batch:
            continue
        t = book.bar
        row = bars.rows[t]
        prices = {a: row[a][point] if a in row else bars.last(t - 1, a, held)
                  for a in {*book.positions, *batch}}
        value = book.cash + sum(q * prices[a] for a, q in sorted(book.positions.items()))
        if value <= 0:
            continue
        after = dict(book.positions)
        cash_after = book.cash
        for asset, (q, p, f, _) in batch.items():
            after[asset] = after.get(asset, 0.0) + q
            cash_after -= q * p + f
        weights = _tied({a: q * prices[a] / value for a, q in after.items()
                         if abs(q) > 1e-12 and a in prices})
        buys = sorted(a for a, (q, _, _, _) in batch.items() if q > 0)
        traded = [w for a, w in weights.items() if a in batch]
        if buys and abs(cash_after) <= SHRUNK * value and len(traded) > 1:
            top = max(traded)
            asked = {a: top * value - book.positions.get(a, 0.0) * prices[a] for a in buys}
            last = sorted(buys, key=asked.__getitem__)[-1]
            top = max(w for a, w in weights.items() if a in batch and a != last)
            weights[last] = max(weights[last], top)
        decision = t - rules.delay
        if decision >= 0:
            decisions[decision] = [Rebalance(weights)]
    return decisions


def exit_rows(fills: pl.DataFrame, log: FillLog, bars: Bars, rules: Rules,
              observed: Observed) -> dict[int, set[int]]:
    """Per bar, the indices (in `log.rows[bar]`) of the rows that are position-rule exits:
    those whose `trigger` is not `market` when the log has that column; else those that
    leave their position flat at the price the side's own exits fill at in that bar under
    `rules` (armed from its own entries, tried from its book before the bar)."""
    if not rules.position_rules:
        return {}
    out: dict[int, set[int]] = {}
    if "trigger" in fills.columns:
        index = {t: i for i, t in enumerate(bars.timestamps)}
        seen: dict[int, int] = {}
        for t, trigger in fills.select("timestamp", "trigger").iter_rows():
            bar = index[t]
            i = seen.get(bar, 0)
            seen[bar] = i + 1
            if trigger is not None and trigger != "market":
                out.setdefault(bar, set()).add(i)
        return out
    oracle = Oracle(bars, {})  # the oracle's exits, armed as the diagnosis arms them
    books = {book.bar: book for book in log.books() if book.bar in log.rows}
    for bar in log.fill_bars:
        flat = [(i, asset, p) for i, asset, before, after, p in log.moves[bar]
                if after == 0.0 and before != 0.0]
        if not flat:
            continue
        own = books[bar]
        entries = [(a, *found) for a in sorted(own.positions)
                   if (found := log.entry(a, bar)) is not None]
        here = rules.with_(**observed.rules_at(bar))
        fills = oracle.exits(bar, here, Book(own.cash, dict(own.positions)), entries)
        exits = {asset: price for _, asset, _, price, _, _ in fills}
        found = {i: asset for i, asset, price in flat
                 if asset in exits and abs(price - exits[asset]) <= 1e-9 * abs(price)}
        if here.point == "open" and len(found) < len(log.rows[bar]):
            # a rebalance at this open: an exit gapped at the open fills where the batch's
            # sell would, and the batch came first (unless the batch traded the asset
            # already: it sells an asset once)
            row = bars.rows[bar]
            first = {}
            for i, (asset, *_) in enumerate(log.rows[bar]):
                first.setdefault(asset, i)
            found = {i: a for i, a in found.items() if first[a] < i or not _at_market(
                log.rows[bar][i], row[a][OPEN], here.slippage)}
        if found:
            out[bar] = set(found)
    return out


def _at_market(fill: tuple, open_: float, slippage: float) -> bool:
    _, q, price, _ = fill
    market = open_ * (1.0 + (1.0 if q > 0 else -1.0) * slippage)
    return abs(price - market) <= 1e-9 * abs(market)


def _tied(weights: dict[str, float]) -> dict[str, float]:
    """Weights within `TIE` of each other (float noise of one decision weight) made equal,
    to their middle value."""
    ordered = sorted(weights, key=weights.__getitem__)
    out: dict[str, float] = {}
    group: list[str] = []
    for asset in [*ordered, None]:
        if asset is not None and group and abs(weights[asset] - weights[group[0]]) <= TIE * max(
                abs(weights[asset]), 1e-12):
            group.append(asset)
            continue
        if group:
            middle = weights[group[len(group) // 2]]
            out.update(dict.fromkeys(group, middle))
        group = [asset] if asset is not None else []
    return out


def unknown(bars: Bars, *logs: FillLog) -> dict[int, set[str]]:
    """Per bar, the traded assets whose inferred decision cannot be trusted there: those
    without a bar then or the bar before (an order may have waited, or been dropped)."""
    traded = {a for log in logs for rows in log.rows.values() for a, *_ in rows}
    out: dict[int, set[str]] = {}
    for t in range(1, len(bars.rows)):
        missing = {a for a in traded if a not in bars.rows[t] or a not in bars.rows[t - 1]}
        if missing:
            out[t] = missing
    return out
