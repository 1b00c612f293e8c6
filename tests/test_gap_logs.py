"""A side's fill log as the gap analysis reads it (`FillLog`), and the prices its models
read (`Bars.at`), checked against the log and the price table read row by row.

Random logs: rows in any timestamp order, several rows of one asset in a bar, positions
that close exactly, close to float dust, reverse, and open short. Whatever the log:
- `rows[t]` is bar t's rows in the log's order, and `by_bar[t]` their sums per asset;
- `fees_before[t]` is the fees of every row before bar t, added in log order;
- its equity curve read from its columns is the one of its rows read one by one;
- `moves` and `books()` follow each position fill by fill, dust read as flat;
- `entry` is the bar and price of the fill that opened the position held before a bar,
  and `cost_basis` the average price paid for it (buys average in).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.gap.attribute import Marks
from engine.gap.logs import FillLog, aggregate
from engine.reference import Bars
from engine.reference.bars import CLOSE, OPEN
from engine.reference.execution import add
from tests.resting_cases import gappy_bars

cases = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "n_assets": st.integers(1, 6),
    "n_bars": st.integers(2, 30),
    "n_rows": st.integers(0, 80),
    "shuffled": st.booleans(),
})


def random_log(case: dict) -> tuple[pl.DataFrame, Bars]:
    prices = gappy_bars(case["n_assets"], case["n_bars"], seed=case["seed"], missing=0.1)
    rng = np.random.default_rng(case["seed"])
    picked = prices[np.sort(rng.integers(0, prices.height, case["n_rows"]))]
    held: dict[str, float] = {}
    quantities = []
    for asset in picked["asset"].to_list():
        kind = rng.integers(0, 4)
        if kind == 0 and held.get(asset):  # closes exactly
            q = -held[asset]
        elif kind == 1 and held.get(asset):  # closes but for float dust
            q = -held[asset] * (1 + 1e-13)
        else:  # buys, sells, reverses or opens short
            q = float(np.round(rng.normal(0, 10), 3)) or 1.0
        held[asset] = held.get(asset, 0.0) + q
        quantities.append(q)
    log = picked.select(
        "timestamp", "asset", quantity=pl.Series(quantities, dtype=pl.Float64),
        price=pl.col("open") * rng.uniform(0.99, 1.01, picked.height),
        fee=pl.Series(rng.uniform(0, 2, picked.height)))
    if case["shuffled"]:  # rows out of timestamp order
        log = log.sample(fraction=1.0, seed=case["seed"], shuffle=True)
    return log, Bars.from_frame(prices)


def read_both_ways(case: dict) -> tuple[pl.DataFrame, Bars, FillLog, dict[int, list[tuple]]]:
    """A random log, its bars, the log as `FillLog` reads it, and its rows by bar in the
    log's order, read one by one."""
    log, bars = random_log(case)
    index = {t: i for i, t in enumerate(bars.timestamps)}
    rows: dict[int, list[tuple]] = {}
    for t, asset, q, p, f in log.iter_rows():
        rows.setdefault(index[t], []).append((asset, q, p, f))
    return log, bars, FillLog(log, bars, 10_000.0), rows


@settings(max_examples=150, deadline=None)
@given(cases)
def test_a_fill_log_reads_as_its_rows_in_order(case):
    _, bars, read, rows = read_both_ways(case)
    assert read.rows == rows
    assert read.fill_bars == sorted(rows)
    assert read.by_bar == {t: aggregate(found) for t, found in rows.items()}
    fees, expected_fees = 0.0, []
    for t in range(len(bars.timestamps)):
        expected_fees.append(fees)
        for *_, f in rows.get(t, ()):
            fees += f
    assert read.fees_before == [*expected_fees, fees]
    marks = Marks(bars)  # the equity of the log's own fills, read from its columns
    assert marks.own(read).tolist() == marks.equity(
        [(t, *row) for t in sorted(rows) for row in rows[t]], 10_000.0).tolist()


@settings(max_examples=150, deadline=None)
@given(cases)
def test_positions_entries_and_costs_follow_each_fill(case):
    log, bars, read, rows = read_both_ways(case)
    assets = sorted(set(log["asset"]))
    held: dict[str, float] = {}
    cash = 10_000.0
    opened: dict[str, tuple[int, float]] = {}  # the last fill that opened from flat
    paid: dict[str, float] = {}  # average price of the buys since the position opened
    basis: dict[str, float] = {}  # what a fill leaves as the position's cost basis
    books = list(read.books())
    assert len(books) == len(bars.timestamps)
    for t in range(len(bars.timestamps)):
        assert books[t].bar == t and books[t].cash == cash
        assert books[t].positions == {a: q for a, q in held.items() if q != 0.0}
        assert all(read.entry(asset, t) == opened.get(asset) for asset in assets)
        moves = []
        for i, (asset, q, p, f) in enumerate(rows.get(t, ())):
            before = held.get(asset, 0.0)
            after = before + q
            if abs(after) <= 1e-9 * max(abs(q), 1e-3):
                after = 0.0  # float dust is flat
            if before == 0.0 and after != 0.0:
                opened[asset] = (t, p)
            if q > 0:
                paid[asset] = p if before <= 0.0 else (paid[asset] * before + p * q) / after
            basis[asset] = paid.get(asset, p)
            held[asset] = after
            cash = add(cash, -(q * p + f))
            moves.append((i, asset, before, after, p))
        assert read.moves.get(t, []) == moves
        assert all(read.cost_basis(asset, t) == basis.get(asset) for asset in assets)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 20))
def test_the_prices_at_a_bar_are_that_bars_or_none(seed, n_assets, n_bars):
    prices = gappy_bars(n_assets, n_bars, seed=seed, missing=0.3)
    bars = Bars.from_frame(prices.sample(fraction=1.0, seed=seed, shuffle=True))
    known = {(t, a): (o, c) for t, a, o, c in
             prices.select("timestamp", "asset", "open", "close").iter_rows()}
    rng = np.random.default_rng(seed)
    names = [*sorted(prices["asset"].unique()), "NOT_THERE"]
    wanted = [(int(rng.integers(-1, len(bars.timestamps))), names[rng.integers(0, len(names))])
              for _ in range(50)]
    bar = np.array([t for t, _ in wanted], dtype=np.int64)
    assets = pl.Series([a for _, a in wanted], dtype=pl.String)
    for field, k in ((OPEN, 0), (CLOSE, 1)):
        got, = bars.at(bar, assets, field)
        for (t, asset), value in zip(wanted, got, strict=True):
            found = known.get((bars.timestamps[t], asset)) if t >= 0 else None
            assert (np.isnan(value) if found is None else value == found[k]), (t, asset)


def test_a_bar_is_found_by_its_timestamp_not_its_row():
    day = dt.datetime(2024, 1, 1)
    prices = pl.DataFrame({"timestamp": [day + dt.timedelta(days=d) for d in (1, 0, 1)],
                           "asset": ["B", "A", "A"], "open": [2.0, 1.0, 3.0],
                           "high": [2.0, 1.0, 3.0], "low": [2.0, 1.0, 3.0],
                           "close": [2.0, 1.0, 3.0], "volume": [1.0, 1.0, 1.0]})
    bars = Bars.from_frame(prices)
    got, = bars.at(np.array([0, 0, 1, 1]), pl.Series(["A", "B", "A", "B"]), OPEN)
    assert got[0] == 1.0 and np.isnan(got[1]) and got[2] == 3.0 and got[3] == 2.0
