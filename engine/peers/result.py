"""What every peer adapter returns: the peer's run normalized to our tables."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class PeerResult:
    """A peer's run, normalized: `fills` (fills schema) and `equity` (equity schema)."""

    fills: pl.DataFrame
    equity: pl.DataFrame

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"][-1])
