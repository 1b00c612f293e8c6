"""Small kernels checked against numpy: the stable sort that sequences every batch, and the
one-pass read of a record array's columns that the result tables are built from."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.kernels import argsort_stable, record_columns
from engine.core.records import FILL_DT, ORDER_DT


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


@pytest.mark.parametrize("dtype", [ORDER_DT, FILL_DT], ids=["orders", "fills"])
@pytest.mark.parametrize("n", [0, 1, 1000])
def test_record_columns_are_the_fields_as_fresh_copies(dtype, n):
    """Any subset of fields, in any order, 8-byte fields as they are and narrower integers
    widened to int64; writing the columns leaves the records alone."""
    rng = np.random.default_rng(n)
    records = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        kind = dtype.fields[name][0]
        info = np.iinfo(kind) if kind.kind == "i" else None
        records[name] = (rng.normal(size=n) if info is None
                         else rng.integers(info.min, info.max, n, endpoint=True))
    names = dtype.names[::-2]
    columns = record_columns(records, names)
    assert list(columns) == list(names)
    for name in names:
        kind = dtype.fields[name][0]
        assert columns[name].dtype == (np.int64 if kind.kind == "i" else kind)
        np.testing.assert_array_equal(columns[name], records[name])
    if n:
        before = records.copy()
        for column in columns.values():
            column[:] = 0
        assert (records == before).all()


def test_record_columns_refuse_fields_that_are_neither_words_nor_narrow_integers():
    records = np.zeros(3, dtype=[("a", np.int64), ("b", np.float32), ("c", np.int32)])
    assert record_columns(records, ("c", "a"))["c"].dtype == np.int64
    with pytest.raises(ValueError, match="field b"):
        record_columns(records, ("a", "b"))
