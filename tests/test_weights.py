"""`top_k_weights`: equal weights on the k best scores, every `every`-th scored timestamp."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine.data.synthetic import generate_market, momentum_scores
from engine.research.weights import top_k_weights

DAYS = [dt.datetime(2024, 1, d) for d in range(1, 8)]


def scores(rows: list[tuple[int, str, float | None]]) -> pl.DataFrame:
    """Scores from (day index, asset, score) rows."""
    return pl.DataFrame(
        [(DAYS[t], a, s) for t, a, s in rows],
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "score": pl.Float64},
        orient="row",
    )


def test_the_top_k_get_one_over_k_and_the_output_is_sorted():
    table = scores([(0, "D", 4.0), (0, "A", 1.0), (0, "C", 3.0), (0, "B", 2.0)])
    weights = top_k_weights(table, k=2, every=1)
    assert weights.rows() == [(DAYS[0], "C", 0.5), (DAYS[0], "D", 0.5)]
    assert weights.schema == pl.Schema(
        {"timestamp": pl.Datetime("us"), "asset": pl.String, "weight": pl.Float64}
    )


def test_every_nth_timestamp_counts_from_the_first_one():
    table = scores([(t, a, float(t)) for t in range(7) for a in ("A", "B")])
    weights = top_k_weights(table, k=1, every=3)
    assert weights["timestamp"].to_list() == [DAYS[0], DAYS[3], DAYS[6]]


def test_ties_go_to_the_asset_whose_name_sorts_first():
    table = scores([(0, "C", 1.0), (0, "B", 1.0), (0, "A", 1.0), (0, "D", 0.0)])
    assert top_k_weights(table, k=2, every=1)["asset"].to_list() == ["A", "B"]


def test_null_and_nan_scores_are_ignored_and_unscored_timestamps_do_not_count():
    table = scores([
        (0, "A", None), (0, "B", float("nan")),
        (1, "A", 1.0), (1, "B", float("nan")),
        (2, "A", 1.0), (2, "B", 2.0),
        (3, "A", 1.0),
    ])
    weights = top_k_weights(table, k=1, every=2)
    assert weights.rows() == [(DAYS[1], "A", 1.0), (DAYS[3], "A", 1.0)]


def test_with_fewer_than_k_scored_assets_the_weights_sum_below_one():
    weights = top_k_weights(scores([(0, "A", 1.0), (0, "B", 2.0)]), k=4, every=1)
    assert weights["weight"].to_list() == [0.25, 0.25]


def test_k_and_every_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        top_k_weights(scores([(0, "A", 1.0)]), k=0, every=1)
    with pytest.raises(ValueError, match="at least 1"):
        top_k_weights(scores([(0, "A", 1.0)]), k=1, every=0)


def test_on_a_synthetic_market_every_decision_holds_k_names_summing_to_one():
    market = generate_market(n_assets=60, n_days=120, seed=5)
    weights = top_k_weights(momentum_scores(market), k=10, every=21)
    per_decision = weights.group_by("timestamp").agg(pl.len(), pl.col("weight").sum())
    assert per_decision.height == len(range(0, 120 - 21, 21))
    assert per_decision["len"].unique().to_list() == [10]
    assert per_decision["weight"].to_list() == pytest.approx([1.0] * per_decision.height)
    assert weights.equals(weights.sort("timestamp", "asset"))
