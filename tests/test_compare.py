"""One fill comparison: the parity checks and the trade-gap analysis give the same answer."""

from __future__ import annotations

import polars as pl
import pytest

from engine.gap.analyze import Side, analyze
from engine.results.checks import fill_parity
from engine.results.compare import Tolerance, join_sides
from tests.builders import bars, calendar

PRICES = bars([[10.0], [10.0], [10.0]], [[10.0], [10.0], [10.0]], ["X"])
CASH = 1_000.0


def fills(*rows: tuple[float, float]) -> pl.DataFrame:
    """Buys of X at 10 on the second bar: (quantity, fee) per row."""
    return pl.DataFrame({
        "timestamp": [calendar(3)[1]] * len(rows), "asset": ["X"] * len(rows),
        "quantity": [q for q, _ in rows], "price": [10.0] * len(rows),
        "fee": [f for _, f in rows],
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


def tables(log: pl.DataFrame) -> dict[str, pl.DataFrame]:
    spent = float((log["quantity"] * log["price"] + log["fee"]).sum())
    held = float(log["quantity"].sum()) * 10.0
    equity = pl.DataFrame({"timestamp": calendar(3), "equity": [CASH, CASH - spent + held,
                                                                CASH - spent + held]})
    return {"fills": log, "equity": equity}


def answers(a: pl.DataFrame, b: pl.DataFrame) -> tuple[bool, bool, bool]:
    """Whether parity passes, whether the gap comparison finds no divergent key, and whether
    the full gap analysis calls the pair identical."""
    parity = fill_parity(tables(a), tables(b))
    joined = join_sides(a, b, Tolerance())
    analysis = analyze(Side(a, name="A"), Side(b, name="B"), PRICES, initial_cash=CASH)
    return parity.ok, not joined["divergent"].any(), analysis.summary["verdict"] == "identical"


def test_a_fee_of_zero_against_one_of_1e_13_is_the_same_fee_everywhere():
    assert answers(fills((10.0, 0.0)), fills((10.0, 1e-13))) == (True, True, True)


def test_one_fill_against_the_same_quantity_split_four_and_six_differs_everywhere():
    one, split = fills((10.0, 0.0)), fills((4.0, 0.0), (6.0, 0.0))
    assert answers(one, split) == (False, False, False)
    assert "1 vs 2 fills" in fill_parity(tables(one), tables(split)).summary()


def test_a_price_beyond_the_tolerance_fails_parity_and_names_the_field():
    moved = fills((10.0, 0.0)).with_columns(pl.col("price") * (1 + 1e-6))
    parity = fill_parity(tables(fills((10.0, 0.0))), tables(moved))
    assert not parity.ok
    assert "price 10 vs 10.00001" in parity.summary()
    assert parity.max_gap["price"] == pytest.approx(1e-6, rel=1e-3)
