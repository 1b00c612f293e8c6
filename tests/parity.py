"""Fill-by-fill comparison used by the parity tests, with the one tolerance rule of
`engine.results.compare` (|a − b| ≤ max(rel × max(|a|, |b|), 1e-9)), applied fill by fill
in order rather than per (timestamp, asset)."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.results.compare import FIELDS, Tolerance

REL = 1e-9


def relative_gap(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    """Largest |a − b| / max(|a|, |b|, floor); 0 for empty arrays."""
    if len(a) == 0:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    return float(np.max(np.abs(a - b) / scale))


def assert_same_fills(ours: pl.DataFrame, theirs: pl.DataFrame, rel: float = REL,
                      require_fills: bool = True) -> dict:
    """Every fill matched on (timestamp, asset) in the same order; numbers to `rel`.

    Both sides must have filled something (a comparison of two empty logs proves nothing),
    unless `require_fills` is off: property tests over many random cases, some of which
    legitimately trade nothing.
    """
    if require_fills:
        assert ours.height > 0 and theirs.height > 0, "a side filled nothing"
    assert ours.height == theirs.height, f"{ours.height} fills against {theirs.height}"
    for key in ("timestamp", "asset"):
        mismatch = (ours[key] != theirs[key]).arg_true()
        assert mismatch.len() == 0, f"{key} differs first at fill {mismatch[0]}"
    gaps = {col: relative_gap(ours[col].to_numpy(), theirs[col].to_numpy()) for col in FIELDS}
    tolerance = Tolerance(rel=rel)
    both = pl.DataFrame({**{f"{c}_a": ours[c] for c in FIELDS},
                         **{f"{c}_b": theirs[c] for c in FIELDS}})
    differs = both.select(pl.any_horizontal(
        tolerance.differs(pl.col(f"{c}_a"), pl.col(f"{c}_b")) for c in FIELDS)).to_series()
    assert not differs.any(), (f"fill {differs.arg_true()[0]} differs beyond the tolerance",
                               gaps)
    return gaps
