"""Build a pair's two fill logs, A's rules, and the onset and end B's construction implies."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import cache

import polars as pl

from engine import BacktestConfig
from engine.reference import Rules, rules_for
from tests.gap_corpus import engines, markets, truth
from tests.gap_corpus.loop import run_broker
from tests.gap_corpus.manifest import BY_NAME, Pair


def fills_a(pair: Pair) -> pl.DataFrame:
    return engines.vectorbt(pair.market) if pair.a == "vectorbt" else engines.engine(pair.market)


def rules_a(pair: Pair) -> Rules:
    """A's rules as its settings state them (vectorbt drops orders without a bar)."""
    fees = markets.MARKETS[pair.market].fees
    profile = "vectorbt" if pair.a == "vectorbt" else "tradegap"
    return rules_for(BacktestConfig.for_profile(profile, initial_cash=markets.INITIAL_CASH,
                                                fees=fees))


@cache
def faults(name: str) -> tuple:
    """The pair's loop faults with their asset roles resolved on A's fills."""
    pair = BY_NAME[name]
    return tuple(_resolved(pair, f) for f in pair.faults)


def _resolved(pair: Pair, fault):
    role = getattr(fault, "asset", "")
    if not role.startswith("?"):
        return fault
    bar = engines.fill_row(pair.market, fault.start)
    stamp = markets.tape(pair.market).timestamps[bar]
    a = engines.vectorbt(pair.market)
    here = a.filter(pl.col("timestamp") == stamp)
    before = (a.filter(pl.col("timestamp") < stamp).group_by("asset")
              .agg(pl.col("quantity").sum()).filter(pl.col("quantity").abs() > 1e-9))
    held = set(before["asset"].to_list())
    if role == "?fill":
        chosen = here["asset"].sort()
    elif role == "?entry":
        chosen = here.filter((pl.col("quantity") > 0) & ~pl.col("asset").is_in(list(held)))
        chosen = chosen["asset"].sort()
    else:  # ?idle
        listed = markets.prices(pair.market).filter(pl.col("timestamp") == stamp)["asset"]
        decision = markets.tape(pair.market).decisions(markets.weights(pair.market))
        decided = list(decision[fault.start][1])
        busy = held | set(here["asset"].to_list()) | set(decided)
        chosen = listed.filter(~listed.is_in(list(busy))).sort()
    return replace(fault, asset=chosen[0])


@cache
def fills_b(name: str) -> pl.DataFrame:
    pair = BY_NAME[name]
    if pair.source == "vectorbt":
        return engines.vectorbt(pair.market, pair.settings)
    if pair.source == "backtrader":
        return engines.backtrader(pair.market).fills.select(engines.FILL_COLUMNS)
    if pair.source == "zipline":
        return engines.zipline(pair.market, pair.zipline_costs).select(engines.FILL_COLUMNS)
    return engines.loop(pair.market, faults(name))


def _loop_without(name: str, index: int) -> pl.DataFrame:
    rest = tuple(f for i, f in enumerate(faults(name)) if i != index)
    return engines.loop(BY_NAME[name].market, rest)


@cache
def fault_onsets(name: str) -> tuple[datetime | None, ...]:
    """Per loop fault: the first bar where it changes a fill (its first batch's bar for a
    fault in the books only); None if it never changes anything."""
    pair = BY_NAME[name]
    stamps = markets.tape(pair.market).timestamps
    b = fills_b(name)
    onsets = []
    for i, fault in enumerate(faults(name)):
        keys = truth.divergent(b, _loop_without(name, i))
        first = keys["timestamp"][0] if keys.height else None
        if fault.in_books:
            broker = _broker(name, None)
            booked = stamps[broker.batch_bars[fault.start]]
            first = booked if first is None else min(first, booked)
        onsets.append(first)
    return tuple(onsets)


def _broker(name: str, watch):
    pair = BY_NAME[name]
    return run_broker(markets.tape(pair.market), markets.weights(pair.market),
                      markets.INITIAL_CASH, markets.MARKETS[pair.market].fees, faults(name),
                      watch)


@cache
def onset(name: str) -> datetime:
    """The first fault's onset: for a loop, the earliest onset of the faults whose cause is
    a first cause; for a real engine, the first bar where B's fills differ from A's (each
    setting acts from its first fill row, and B equals A before)."""
    pair = BY_NAME[name]
    if pair.source != "loop":
        keys = truth.divergent(fills_a(pair), fills_b(name))
        return keys["timestamp"][0]
    found = [t for f, t in zip(faults(name), fault_onsets(name), strict=True)
             if f.cause in pair.first_cause and t is not None]
    return min(found)


@cache
def end(name: str) -> datetime:
    """The last bar where the pair's first fault changed its batch's fills, each batch
    executed from the same book with and without it."""
    pair = BY_NAME[name]
    broker = _broker(name, faults(name)[0])
    return markets.tape(pair.market).timestamps[broker.changed[-1]]


def first_cause_by_construction(name: str) -> set[str]:
    """For a loop pair: the causes of the faults that, taken away alone, change B's fill at
    the first divergent key (checks the manifest's `first_cause`)."""
    pair = BY_NAME[name]
    b = fills_b(name)
    key = truth.first_key(fills_a(pair), b)
    assert key is not None, f"{name}: B equals A"
    return {f.cause for i, f in enumerate(faults(name))
            if truth.key_differs(b, _loop_without(name, i), key)}
