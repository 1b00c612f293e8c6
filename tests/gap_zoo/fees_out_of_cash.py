"""Fees left out of cash: fills carry their fee, but the ledger never takes it from cash.

The batch kernel still counts fees when it checks what a buy costs; only the booking drops
them, so cash drifts above what was really paid.
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.core.ledger import Ledger
from tests.gap_zoo import run_under


class FeelessLedger(Ledger):
    """Books quantity × price but not the fee."""

    def apply_fills(
        self, assets: np.ndarray, quantity: np.ndarray, price: np.ndarray, fee: np.ndarray
    ) -> None:
        super().apply_fills(assets, quantity, price, np.zeros_like(fee))


@contextlib.contextmanager
def patched():
    """The loop's ledger ignores fees while this is active."""
    from unittest import mock

    with mock.patch("engine.core.loop.Ledger", FeelessLedger):
        yield


run = run_under(patched)
