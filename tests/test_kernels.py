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
    rng = np.random.default_rng(n)
    records = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        kind = dtype.fields[name][0]
        records[name] = (rng.normal(size=n) if kind == np.float64
                         else rng.integers(-5, 10**6, n))
    names = dtype.names[::-2]  # any subset, in any order
    columns = record_columns(records, names)
    assert list(columns) == list(names)
    for name in names:
        assert columns[name].dtype == dtype.fields[name][0]
        np.testing.assert_array_equal(columns[name], records[name])
    if n:
        before = records.copy()
        for column in columns.values():
            column[:] = 0
        assert (records == before).all()  # the copies do not reach the records


def test_record_columns_refuse_fields_that_are_not_8_byte_words():
    records = np.zeros(3, dtype=[("a", np.int64), ("b", np.int32), ("c", np.int32)])
    with pytest.raises(ValueError, match="field b"):
        record_columns(records, ("a", "b"))
