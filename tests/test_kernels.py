"""Small kernels checked against numpy: the stable sort that sequences every batch."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.kernels import argsort_stable


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
