"""The synthetic market is deterministic, valid input, and looks like a stock market."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.data.loading import load_prices
from engine.data.synthetic import asset_names, business_days, generate_market, momentum_scores

N_ASSETS, N_DAYS = 200, 600


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(n_assets=N_ASSETS, n_days=N_DAYS, seed=3)


def wide(market: pl.DataFrame, column: str) -> np.ndarray:
    """(T, N) array of a column, NaN where the bar is missing."""
    table = market.pivot(on="asset", index="timestamp", values=column).sort("timestamp")
    return table.drop("timestamp").select(sorted(table.columns[1:])).to_numpy()


def test_same_seed_gives_the_same_frame_and_another_seed_does_not():
    first = generate_market(n_assets=30, n_days=100, seed=11)
    assert first.equals(generate_market(n_assets=30, n_days=100, seed=11))
    assert not first.equals(generate_market(n_assets=30, n_days=100, seed=12))


def test_columns_types_and_order(market):
    assert market.schema == pl.Schema(
        {"timestamp": pl.Datetime("us"), "asset": pl.String, "open": pl.Float64,
         "high": pl.Float64, "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64}
    )
    assert market.equals(market.sort("timestamp", "asset"))
    assert market.select(pl.struct("timestamp", "asset").is_unique().all()).item()


def test_the_market_is_valid_input_unchanged(market):
    assert load_prices(market).equals(market)


def test_calendar_is_n_days_of_business_days_from_start(market):
    days = market["timestamp"].unique().sort()
    assert days.len() == N_DAYS
    assert days[0] == dt.datetime(2010, 1, 4)
    assert days.dt.weekday().max() <= 5
    assert days.to_list() == business_days("2010-01-04", N_DAYS).tolist()


def test_a_weekend_start_rolls_forward_to_monday():
    assert business_days("2024-01-06", 2).tolist() == [dt.datetime(2024, 1, 8),
                                                       dt.datetime(2024, 1, 9)]


def test_asset_names_are_zero_padded_so_name_order_is_index_order(market):
    names = asset_names(N_ASSETS)
    assert names[0] == "A0001"
    assert names == sorted(names)
    assert market["asset"].unique().sort().to_list() == names
    assert asset_names(12_000)[:2] == ["A00001", "A00002"]


def test_prices_are_positive_and_ohlc_consistent(market):
    assert market.select(pl.min_horizontal(pl.col("open", "high", "low", "close").min())).item() > 0
    consistent = market.select(
        (pl.col("low") <= pl.min_horizontal("open", "close"))
        & (pl.max_horizontal("open", "close") <= pl.col("high"))
    ).to_series()
    assert consistent.all()
    assert market["volume"].min() >= 0
    assert market["volume"].is_finite().all()


def test_some_assets_list_late_and_some_delist_early(market):
    days = market["timestamp"].unique().sort()
    span = market.group_by("asset").agg(first=pl.col("timestamp").min(),
                                        last=pl.col("timestamp").max())
    late = (span["first"] > days[0]).sum()
    early = (span["last"] < days[-1]).sum()
    assert 0.01 * N_ASSETS <= late <= 0.06 * N_ASSETS
    assert 0.01 * N_ASSETS <= early <= 0.06 * N_ASSETS


def test_about_one_bar_in_a_thousand_is_missing_while_listed(market):
    days = market["timestamp"].unique().sort().to_list()
    position = {day: i for i, day in enumerate(days)}
    span = market.group_by("asset").agg(
        first=pl.col("timestamp").min(), last=pl.col("timestamp").max(), bars=pl.len()
    )
    listed = sum(position[b] - position[a] + 1 for a, b in zip(span["first"], span["last"],
                                                               strict=True))
    missing = listed - market.height
    assert 0.0002 * listed <= missing <= 0.003 * listed


def test_returns_move_together_through_the_market_factor(market):
    returns = np.diff(np.log(wide(market, "close")), axis=0)
    complete = returns[:, ~np.isnan(returns).any(axis=0)]
    correlation = np.corrcoef(complete.T)
    pairs = correlation[np.triu_indices_from(correlation, k=1)]
    assert pairs.mean() > 0.1
    assert (pairs > 0).mean() > 0.9


def test_volatility_differs_across_assets_within_a_realistic_range(market):
    returns = np.diff(np.log(wide(market, "close")), axis=0)
    annual = np.nanstd(returns, axis=0) * np.sqrt(252)
    assert annual.min() > 0.08
    assert annual.max() < 1.0
    assert annual.max() / annual.min() > 2


def test_open_is_the_previous_close_times_a_small_overnight_gap(market):
    gap = np.log(wide(market, "open")[1:] / wide(market, "close")[:-1])
    gap = gap[np.isfinite(gap)]
    assert np.median(np.abs(gap)) < 0.02
    assert np.abs(gap).max() < 0.5


def test_volume_is_higher_for_more_active_days(market):
    returns = np.abs(np.diff(np.log(wide(market, "close")), axis=0))
    volume = np.log(wide(market, "volume")[1:])
    standardized = returns / np.nanstd(returns, axis=0)
    keep = np.isfinite(standardized) & np.isfinite(volume)
    demeaned = volume - np.nanmean(volume, axis=0)
    assert np.corrcoef(standardized[keep], demeaned[keep])[0, 1] > 0.1


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="at least 1"):
        generate_market(n_assets=0)


def test_momentum_is_the_trailing_close_return_known_at_the_close(market):
    lookback = 5
    scores = momentum_scores(market, lookback=lookback)
    asset = market["asset"][0]
    closes = market.filter(pl.col("asset") == asset)
    mine = scores.filter(pl.col("asset") == asset)
    assert mine.height == closes.height - lookback
    assert mine["timestamp"][0] == closes["timestamp"][lookback]
    expected = closes["close"][lookback:] / closes["close"][:-lookback] - 1
    np.testing.assert_allclose(mine["score"].to_numpy(), expected.to_numpy(), rtol=1e-15)


def test_momentum_rows_are_sorted_and_absent_without_enough_history(market):
    scores = momentum_scores(market, lookback=21)
    assert scores.columns == ["timestamp", "asset", "score"]
    assert scores.equals(scores.sort("timestamp", "asset"))
    bars = market.group_by("asset").len()["len"]
    assert scores.height == (bars - 21).clip(lower_bound=0).sum()
    assert scores["score"].is_finite().all()


def test_without_gaps_every_asset_has_every_bar_at_the_same_prices(market):
    full = generate_market(n_assets=N_ASSETS, n_days=N_DAYS, seed=3, gaps=False)
    assert full.height == N_ASSETS * N_DAYS
    kept = full.join(market.select("timestamp", "asset"), on=["timestamp", "asset"],
                     how="semi", maintain_order="left")
    assert kept.equals(market)


def test_random_scores_change_every_bar_and_repeat_with_the_seed():
    from engine.data.synthetic import random_scores

    market = generate_market(n_assets=6, n_days=20, seed=4)
    scores = random_scores(market, seed=1)
    assert scores.select("timestamp", "asset").equals(market.select("timestamp", "asset"))
    assert scores.equals(random_scores(market, seed=1))
    ranks = scores.with_columns(pl.col("score").rank().over("timestamp"))
    assert ranks.group_by("asset").agg(pl.col("score").n_unique())["score"].min() > 1
