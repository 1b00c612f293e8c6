"""Targets traded instead of deltas: orders are sized as if every position were zero.

`order_target_percent(a)` buys `a × value / price` again at every rebalance, and a target of
0 trades nothing, so positions grow past their targets and dropped names are never sold.
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.core.book import OpenOrders
from engine.core.execution import size_orders
from tests.gap_zoo import run_under


def size_from_zero(
    orders: OpenOrders, position: np.ndarray, book_value: float, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`size_orders` against a zero position."""
    return size_orders(orders, np.zeros_like(position), book_value, price)


@contextlib.contextmanager
def patched():
    """The loop sizes every order from a zero position while this is active."""
    from unittest import mock

    with mock.patch("engine.core.loop.size_orders", size_from_zero):
        yield


run = run_under(patched)
