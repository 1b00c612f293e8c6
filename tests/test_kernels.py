"""Small kernels checked against numpy: the stable sort that sequences every batch, and the
one-pass reads of the journal and the order records that the result tables are built from."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.kernels import NEVER, argsort_stable
from engine.core.records import (
    FILL_DT,
    KIND_NAMES,
    ORDER_DT,
    ORIGIN_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    TYPE_NAMES,
    Origin,
    Reason,
)
from engine.results.columns import fill_columns, order_columns


@pytest.mark.parametrize("seed", range(20))
def test_argsort_stable_is_numpys_stable_argsort(seed):
    rng = np.random.default_rng(seed)
    for n in (0, 1, 15, 16, 17, 33, 100, 257):
        for values in (rng.normal(size=n),
                       rng.choice([0.0, -0.0, 1.0, 2.5, np.nan, -3.0, np.inf], n),
                       rng.permutation(n).astype(np.int64)):
            order, buffer = np.empty(n, np.int64), np.empty(n, np.int64)
            argsort_stable(values, n, order, buffer)
            assert order.tolist() == np.argsort(values, kind="stable").tolist()


def test_argsort_stable_sorts_only_the_first_count_values():
    values = np.array([3.0, 1.0, 2.0, -9.0])
    order = np.full(4, -1, np.int64)
    argsort_stable(values, 3, order, np.empty(4, np.int64))
    assert order.tolist() == [1, 2, 0, -1]


def random_records(dtype: np.dtype, n: int, rng: np.random.Generator) -> np.ndarray:
    """Records of `dtype` with every field drawn (integers over their whole range)."""
    records = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        kind = dtype.fields[name][0]
        info = np.iinfo(kind) if kind.kind == "i" else None
        records[name] = (rng.normal(size=n) if info is None
                         else rng.integers(info.min, info.max, n, endpoint=True))
    return records


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_fill_columns_are_the_journal_fields_and_each_fills_trigger(n):
    """One pass reads every field a fills table shows; the trigger is the rule that created
    the order (origin) or else its type, read from the order the fill names."""
    rng = np.random.default_rng(n)
    n_bars, n_orders = 50, 40
    journal = random_records(FILL_DT, n, rng)
    journal["bar"] = rng.integers(0, n_bars, n)
    journal["order_id"] = rng.integers(-1, n_orders, n)
    orders = random_records(ORDER_DT, n_orders, rng)
    orders["type"] = rng.integers(0, len(TYPE_NAMES), n_orders)
    orders["origin"] = rng.integers(0, len(ORIGIN_NAMES), n_orders)
    times = np.sort(rng.integers(0, 10**15, n_bars))
    before = journal.copy(), orders.copy()
    columns = fill_columns(journal, orders, times)
    for name in ("quantity", "price", "fee", "order_id", "asset", "bar"):
        np.testing.assert_array_equal(getattr(columns, name), journal[name])
    np.testing.assert_array_equal(columns.time, times[journal["bar"]])
    fired = orders[np.maximum(journal["order_id"], 0)]
    words = [*TYPE_NAMES, *ORIGIN_NAMES]
    expected = [ORIGIN_NAMES[o] if o != Origin.user else TYPE_NAMES[t]
                for t, o in zip(fired["type"], fired["origin"], strict=True)]
    assert [words[code] for code in columns.trigger] == expected
    assert (journal == before[0]).all() and (orders == before[1]).all()


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_order_columns_are_the_record_fields_with_their_nulls(n):
    """Every field an orders table shows, bars as times; filled_at, valid_until, parent and
    group flagged null where they do not apply (unfilled, good till cancelled or past the
    last bar, none); a rule's exit without a reason is named for its rule."""
    rng = np.random.default_rng(n)
    n_bars = 30
    records = random_records(ORDER_DT, n, rng)
    records["created_bar"] = rng.integers(0, n_bars, n)
    for name, words in (("asset", range(500)), ("kind", KIND_NAMES), ("status", STATUS_NAMES),
                        ("type", TYPE_NAMES)):
        records[name] = rng.integers(0, len(words), n)
    records["filled_bar"] = rng.integers(-1, n_bars, n)
    records["valid_until"] = rng.choice([NEVER, 0, 5, n_bars - 1, n_bars, n_bars + 3], n)
    records["parent"] = rng.integers(-1, 3, n)
    records["group"] = rng.integers(-1, 3, n)
    records["reason"] = rng.integers(0, len(REASON_NAMES), n)
    records["origin"] = rng.integers(0, len(ORIGIN_NAMES), n)
    times = np.sort(rng.integers(0, 10**15, n_bars))
    columns = order_columns(records, times)
    same = ("asset", "kind", "amount", "status", "filled_quantity", "type", "limit_price",
            "stop_price", "trail", "parent", "group", "origin")
    for name in same:
        np.testing.assert_array_equal(getattr(columns, name), records[name])
    np.testing.assert_array_equal(columns.created, times[records["created_bar"]])
    filled = records["filled_bar"] >= 0
    np.testing.assert_array_equal(columns.filled_at[filled],
                                  times[records["filled_bar"][filled]])
    until = records["valid_until"]
    bounded = until < n_bars
    np.testing.assert_array_equal(columns.valid_until[bounded], times[until[bounded]])
    np.testing.assert_array_equal(
        columns.nulls, [~filled, ~bounded, records["parent"] < 0, records["group"] < 0])
    by_rule = (records["reason"] == Reason.none) & (records["origin"] != Origin.user)
    words = [*REASON_NAMES, *ORIGIN_NAMES]
    assert [words[code] for code in columns.reason] == [
        ORIGIN_NAMES[o] if rule else REASON_NAMES[r]
        for r, o, rule in zip(records["reason"], records["origin"], by_rule, strict=True)]
