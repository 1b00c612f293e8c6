"""Explain the gap between two backtests: root causes per fill and the equity gap by cause.

Each divergent (timestamp, asset) is a **root** difference when the two sides' semantics,
applied to the same book at that batch, fill it differently; the cause is the first
semantic field (in `Semantics` order) whose switch alone changes the fill. Otherwise the
difference is **propagated**: the side did exactly what its semantics say from its own
(already different) book. Fills that a side's fitted semantics cannot reproduce are
`extra_fill`, `missing_fill` or `unexplained`.

Attribution (with target weights): replay side A's semantics, then switch the differing
fields to B's one at a time in `Semantics` order; each switch's change in final equity goes
to its cause, and what no switch explains is `unexplained`, so the amounts add up exactly to
B − A. Without weights, each fill's own contribution to final equity, `q × (last close −
price) − fee`, is assigned to its key's label (propagated amounts stay `propagated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.data.market import Market as EngineMarket
from engine.gap.compare import KEYS, Tolerance, join_sides
from engine.gap.infer import Fit, fit_semantics, read_semantics
from engine.gap.replay import Market, Replayer, replay
from engine.gap.semantics import CAUSES, Semantics, cause_of
from engine.results.derive import positions_from_fills

EXPLAINED_SHARE = 0.99
DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Side:
    """One backtest as the analysis sees it: fills, optional equity curve and semantics."""

    fills: pl.DataFrame
    equity: pl.DataFrame | None = None
    semantics: Semantics | None = None
    name: str = ""


@dataclass(frozen=True)
class GapAnalysis:
    """The comparison per key, the summary, and per-bar series for the report plot."""

    gap_fills: pl.DataFrame
    summary: dict[str, Any]
    curves: pl.DataFrame  # timestamp, equity_a, equity_b, and cumulative gap per cause


def analyze(
    a: Side, b: Side, prices: pl.DataFrame, weights: pl.DataFrame | None = None,
    initial_cash: float = 1_000_000.0, tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> GapAnalysis:
    """Compare `b` against `a` fill by fill and explain every difference."""
    joined = join_sides(a.fills, b.fills, tolerance)
    timestamps = prices["timestamp"].unique().sort()
    last_close = prices.group_by("asset").agg(pl.col("close").last())
    equity_a = _final_equity(a, prices, last_close, initial_cash)
    equity_b = _final_equity(b, prices, last_close, initial_cash)

    if weights is not None and joined["divergent"].any():
        market = Market.build(prices, weights)
        decisions = weights["timestamp"].unique()
        fit_a = fit_semantics(a.fills, market, initial_cash,
                              a.semantics or read_semantics(a.fills, prices, decisions), tolerance)
        fit_b = fit_semantics(b.fills, market, initial_cash,
                              b.semantics or read_semantics(b.fills, prices, decisions), tolerance)
        labels = _label_by_replay(joined, fit_a, fit_b, market, tolerance)
        attribution, curves = _attribute_by_replay(fit_a.semantics, fit_b.semantics, market,
                                                   initial_cash, equity_a, equity_b, timestamps)
        semantics = {"a": fit_a.semantics.to_dict(), "b": fit_b.semantics.to_dict()}
    else:
        labels = _label_directly(joined, timestamps)
        attribution, curves = None, None
        semantics = None
    gap_fills = joined.join(labels, on=KEYS, how="left").with_columns(
        pl.col("cause").fill_null("identical"), pl.col("root").fill_null(False))
    if attribution is None:
        attribution, curves = _attribute_by_fills(gap_fills, last_close, equity_a, equity_b,
                                                  timestamps, a, b, prices, initial_cash)
    summary = _summary(gap_fills, attribution, equity_a, equity_b, semantics, a, b)
    both = pl.DataFrame({
        "timestamp": timestamps,
        "equity_a": equity_curve(a, prices, initial_cash),
        "equity_b": equity_curve(b, prices, initial_cash),
    })
    curves = both.join(curves.select("timestamp", pl.col("^gap_.*$")), on="timestamp",
                       how="left")
    return GapAnalysis(gap_fills.select(GAP_COLUMNS), summary, curves)


def equity_curve(side: Side, prices: pl.DataFrame, initial_cash: float) -> np.ndarray:
    """The side's equity per bar: reported, else cash − Σ flows + positions at last close."""
    if side.equity is not None and side.equity.height:
        return side.equity.sort("timestamp")["equity"].to_numpy()
    market = EngineMarket.from_bars(prices)
    held = positions_from_fills(side.fills, market)
    value = (pl.DataFrame({"timestamp": market.timestamps})
             .join(held.group_by("timestamp").agg(pl.col("market_value").sum()),
                   on="timestamp", how="left")["market_value"].fill_null(0.0).to_numpy())
    flows = side.fills.group_by("timestamp").agg(
        (-(pl.col("quantity") * pl.col("price")) - pl.col("fee")).sum().alias("flow"))
    cash = (pl.DataFrame({"timestamp": market.timestamps})
            .join(flows, on="timestamp", how="left")["flow"].fill_null(0.0).cum_sum()
            .to_numpy() + initial_cash)
    return cash + value


GAP_COLUMNS = ["timestamp", "asset", "quantity_a", "price_a", "fee_a", "rows_a",
               "quantity_b", "price_b", "fee_b", "rows_b", "quantity_diff", "price_diff",
               "fee_diff", "divergent", "cause", "root"]


def _final_equity(side: Side, prices: pl.DataFrame, last_close: pl.DataFrame,
                  initial_cash: float) -> float:
    """The side's reported final equity, else cash − Σ flows + positions at the last close."""
    if side.equity is not None and side.equity.height:
        return float(side.equity["equity"][-1])
    fills = side.fills.join(last_close, on="asset", how="left")
    return float(initial_cash + (fills["quantity"] * (fills["close"] - fills["price"])
                                 - fills["fee"]).sum())


CASH_ONLY = {"fees_in_cash"}  # switches that change only the booking: seen a batch later


def _label_by_replay(joined: pl.DataFrame, fit_a: Fit, fit_b: Fit, market: Market,
                     tolerance: Tolerance) -> pl.DataFrame:
    """Root cause or `propagated` for every divergent key, testing one switch at a time.

    From the first side's book at the key's batch, each differing field is switched alone.
    The cause is the first field whose switch reproduces the other side's fill, else the
    first whose switch changes it at all; if none does, the difference is propagated.
    Fields that only change the booking are replayed over the previous batch too.
    """
    divergent = joined.filter(pl.col("divergent"))
    residual_a = {(r[0], r[1]) for r in fit_a.residual.select(KEYS).iter_rows()}
    residual_b = {(r[0], r[1]) for r in fit_b.residual.select(KEYS).iter_rows()}
    sem_a, sem_b = fit_a.semantics, fit_b.semantics
    fields = sem_a.differences(sem_b)
    index = {t: i for i, t in enumerate(market.timestamps)}
    cache: dict[tuple, dict[str, tuple]] = {}

    def batch_fills(i: int, fit: Fit, semantics: Semantics, back: int) -> dict[str, tuple]:
        """Fills of batch `i` replayed under `semantics` from the book `back` batches earlier."""
        key = (i, id(fit), semantics, back)
        if key not in cache:
            bars = sorted(b for b in fit.run.books if b <= i)[-1 - back:]
            book = fit.run.books[bars[0]].copy() if bars and bars[-1] == i else None
            fills: dict[str, tuple] = {}
            for bar in bars if book is not None else ():
                prices = market.opens[bar] if semantics.fill == "next_open" else market.closes[bar]
                batch = Replayer(semantics).batch(book, market.timestamps[bar],
                                                  fit.run.orders[bar], prices,
                                                  dict(book.last_close))
                book.last_close.update(market.closes[bar])
                if bar == i:
                    for fill in batch:
                        fills[fill[1]] = _sum_fill(fills.get(fill[1]), fill)
            cache[key] = fills
        return cache[key]

    rows = []
    for timestamp, asset, qa, pa_, fa, qb, pb, fb in divergent.select(
            "timestamp", "asset", "quantity_a", "price_a", "fee_a", "quantity_b", "price_b",
            "fee_b").iter_rows():
        key = (timestamp, asset)
        cause, root = "propagated", False
        if key in residual_a or key in residual_b:
            cause, root = _residual_cause(key, residual_a, residual_b, qa, qb), True
        elif "fill" in fields:
            cause, root = "timing", True
        elif fields:
            i = index[timestamp]
            on_a = i in fit_a.run.books
            fit, base_sem, other = (fit_a, sem_a, sem_b) if on_a else (fit_b, sem_b, sem_a)
            target = (timestamp, asset, qb, pb, fb) if on_a else (timestamp, asset, qa, pa_, fa)
            target = None if target[2] is None else target
            changing = reproducing = None
            for name in fields:
                back = 1 if name in CASH_ONLY else 0
                base = batch_fills(i, fit, base_sem, back).get(asset)
                moved = batch_fills(i, fit, base_sem.with_(**{name: getattr(other, name)}),
                                    back).get(asset)
                if _same_fill(moved, target, tolerance) and not _same_fill(base, moved,
                                                                            tolerance):
                    reproducing = name
                    break
                if changing is None and not _same_fill(base, moved, tolerance):
                    changing = name
            name = reproducing or changing
            if name is not None:
                value = getattr(sem_b, name)
                if name == "position_basis" and value == "current":
                    value = sem_a.position_basis
                cause, root = cause_of(name, value), True
        rows.append((timestamp, asset, cause, root))
    return pl.DataFrame(rows, orient="row", schema={
        "timestamp": joined.schema["timestamp"], "asset": pl.String, "cause": pl.String,
        "root": pl.Boolean})


def _sum_fill(previous: tuple | None, fill: tuple) -> tuple:
    if previous is None:
        return fill
    return (fill[0], fill[1], previous[2] + fill[2], fill[3], previous[4] + fill[4])


def _same_fill(x: tuple | None, y: tuple | None, tolerance: Tolerance) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return all(abs(p - q) <= max(tolerance.rel * max(abs(p), abs(q)), tolerance.abs)
               for p, q in zip(x[2:], y[2:], strict=True))


def _residual_cause(key, residual_a, residual_b, qa, qb) -> str:
    """A fill a side's own semantics cannot reproduce."""
    if qa is None or qb is None:
        return "extra_fill" if (qa is None) == (key in residual_b) else "missing_fill"
    return "unexplained"


def _label_directly(joined: pl.DataFrame, timestamps: pl.Series) -> pl.DataFrame:
    """Causes visible in the two logs alone (no replay): price, fee, rounding, duplicates,
    timing (the same asset filled at a nearby bar on the other side); the rest after the
    first divergence is propagated."""
    tol = DEFAULT_TOLERANCE
    qa, qb = pl.col("quantity_a"), pl.col("quantity_b")
    same_q = ~tol.differs(qa.fill_null(0.0), qb.fill_null(0.0))
    same_p = ~tol.differs(pl.col("price_a"), pl.col("price_b"))
    integral = ((qa - qa.round()).abs() <= 1e-9) != ((qb - qb.round()).abs() <= 1e-9)
    one_sided = qa.is_null() | qb.is_null()  # timing: a one-sided fill near one on the other side
    d = joined.filter(pl.col("divergent")).with_columns(bar=pl.col("timestamp").rank("dense"))
    if d.height == 0:
        return pl.DataFrame(schema={"timestamp": joined.schema["timestamp"],
                                    "asset": pl.String, "cause": pl.String, "root": pl.Boolean})
    lonely = d.filter(one_sided).with_columns(side=qa.is_null())
    near = []
    for step in (1, -1):
        other_side = pl.col("side") != pl.col("side").shift(step).over("asset")
        close_by = (pl.col("bar") - pl.col("bar").shift(step).over("asset")).abs() <= 2
        near.append((other_side & close_by).fill_null(False))
    lonely = lonely.select(*KEYS, timing=near[0] | near[1])
    d = d.join(lonely, on=KEYS, how="left").with_columns(pl.col("timing").fill_null(False))
    first = d["timestamp"].min()
    cause = (
        pl.when(pl.col("rows_a").fill_null(1) != pl.col("rows_b").fill_null(1))
        .then(pl.lit("duplicate_fill"))
        .when(pl.col("timing")).then(pl.lit("timing"))
        .when(qa.is_null()).then(pl.lit("extra_fill"))
        .when(qb.is_null()).then(pl.lit("missing_fill"))
        .when(same_q & ~same_p).then(pl.lit("fill_price"))
        .when(same_q & same_p).then(pl.lit("fee"))
        .when(integral & ((qa - qb).abs() < 1)).then(pl.lit("rounding"))
        .when(pl.col("timestamp") > first).then(pl.lit("propagated"))
        .otherwise(pl.lit("unexplained"))
    )
    return d.select(*KEYS, cause.alias("cause")).with_columns(
        root=pl.col("cause") != "propagated")


def _attribute_by_replay(sem_a: Semantics, sem_b: Semantics, market: Market,
                         initial_cash: float, equity_a: float, equity_b: float,
                         timestamps: pl.Series) -> tuple[dict[str, float], pl.DataFrame]:
    """Switch A's semantics to B's one field at a time; each step's equity change is its
    cause's share. Returns amounts per cause and per-bar cumulative gaps by cause."""
    amounts = {cause: 0.0 for cause in CAUSES}
    semantics = sem_a
    curve = np.asarray(replay(market, semantics, initial_cash).equity)
    per_cause: dict[str, np.ndarray] = {}
    for name in sem_a.differences(sem_b):
        semantics = semantics.with_(**{name: getattr(sem_b, name)})
        moved = np.asarray(replay(market, semantics, initial_cash).equity)
        value = getattr(sem_b, name)
        if name == "position_basis" and value == "current":
            value = sem_a.position_basis
        cause = cause_of(name, value)
        amounts[cause] += float(moved[-1] - curve[-1])
        per_cause[cause] = per_cause.get(cause, 0.0) + (moved - curve)
        curve = moved
    total = equity_b - equity_a
    amounts["unexplained"] = total - sum(v for k, v in amounts.items() if k != "unexplained")
    curves = pl.DataFrame({"timestamp": timestamps,
                           **{f"gap_{c}": v for c, v in per_cause.items()}})
    return amounts, curves


def _attribute_by_fills(gap_fills: pl.DataFrame, last_close: pl.DataFrame, equity_a: float,
                        equity_b: float, timestamps: pl.Series, a: Side, b: Side,
                        prices: pl.DataFrame, initial_cash: float,
                        ) -> tuple[dict[str, float], pl.DataFrame]:
    """Each fill adds q × (last close − price) − fee to final equity; give each key's
    difference to its label. Exact when both sides' equity is reconstructed from fills."""
    def contribution(side: str) -> pl.Expr:
        q, p, f = (pl.col(f"{c}_{side}").fill_null(0.0) for c in ("quantity", "price", "fee"))
        return q * (pl.col("close") - p.fill_null(0.0)) - f

    keyed = gap_fills.filter(pl.col("divergent")).join(last_close, on="asset", how="left")
    keyed = keyed.with_columns((contribution("b") - contribution("a")).alias("amount"))
    amounts = {cause: 0.0 for cause in CAUSES}
    for cause, amount in keyed.group_by("cause").agg(pl.col("amount").sum()).iter_rows():
        amounts[cause] = amounts.get(cause, 0.0) + float(amount)
    total = equity_b - equity_a
    amounts["unexplained"] += total - sum(amounts.values())
    by_bar = (keyed.group_by("timestamp", "cause").agg(pl.col("amount").sum())
              .pivot(on="cause", index="timestamp", values="amount"))
    curves = (pl.DataFrame({"timestamp": timestamps}).join(by_bar, on="timestamp", how="left")
              .fill_null(0.0))
    curves = curves.select("timestamp", *[pl.col(c).cum_sum().alias(f"gap_{c}")
                                          for c in curves.columns if c != "timestamp"])
    return amounts, curves


def _summary(gap_fills: pl.DataFrame, attribution: dict[str, float], equity_a: float,
             equity_b: float, semantics: dict | None, a: Side, b: Side) -> dict[str, Any]:
    divergent = gap_fills.filter(pl.col("divergent"))
    counts = {c: n for c, n in divergent.group_by("cause").len().iter_rows()}
    roots = {c: n for c, n in divergent.filter(pl.col("root")).group_by("cause").len()
             .iter_rows()}
    first = None
    if divergent.height:
        row = divergent.row(0, named=True)
        first = {k: row[k] for k in ("timestamp", "asset", "cause", "quantity_a",
                                     "quantity_b", "price_a", "price_b", "fee_a", "fee_b")}
    total = equity_b - equity_a
    unexplained_amount = abs(attribution.get("unexplained", 0.0))
    unexplained_rows = counts.get("unexplained", 0)
    if divergent.height == 0 and abs(total) <= 1e-9 * max(abs(equity_a), 1.0):
        verdict = "identical"
    elif unexplained_rows == 0 and unexplained_amount <= (1 - EXPLAINED_SHARE) * abs(total):
        verdict = "explained"
    else:
        verdict = "unexplained"
    return {
        "a": a.name, "b": b.name,
        "verdict": verdict,
        "first_divergence": first,
        "causes": {c: counts[c] for c in CAUSES if c in counts},
        "root_causes": {c: roots[c] for c in CAUSES if c in roots},
        "attribution": {c: v for c, v in attribution.items() if v != 0.0},
        "final_equity": {"a": equity_a, "b": equity_b, "gap": total},
        "fills": {"a": int(a.fills.height), "b": int(b.fills.height),
                  "divergent_keys": int(divergent.height)},
        "semantics": semantics,
    }
