"""compute_features: trailing-only features per bar, the next-bar label, nulls without history."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.data.synthetic import generate_market
from engine.research.features import (
    FEATURE_DESCRIPTIONS,
    LABEL,
    compute_features,
    describe_features,
)

KEYS = ["timestamp", "asset"]
HORIZONS = (1, 5, 21, 63)
FEATURES = [name for name in FEATURE_DESCRIPTIONS if name != LABEL]


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    """Ten assets over 150 days with a few bars knocked out, so some returns span gaps."""
    bars = generate_market(n_assets=10, n_days=150, seed=3)
    gaps = pl.int_range(pl.len()).shuffle(seed=1).over("asset") < 4
    return bars.filter(~gaps | (pl.col("asset") != "A0004"))


@pytest.fixture(scope="module")
def features(market: pl.DataFrame) -> pl.DataFrame:
    return compute_features(market)


def per_asset(frame: pl.DataFrame, column: str) -> dict[str, np.ndarray]:
    """Each asset's column in time order, nulls as NaN."""
    return {
        name: group.sort("timestamp")[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for (name,), group in frame.group_by("asset")
    }


def test_one_row_per_bar_in_the_same_order(market, features):
    assert_frame_equal(features.select(KEYS), market.select(KEYS))
    assert features.columns == [*KEYS, *FEATURE_DESCRIPTIONS]
    assert all(features.schema[name] == pl.Float64 for name in FEATURE_DESCRIPTIONS)


def test_every_column_is_documented_for_any_settings(market):
    frame = compute_features(market, horizons=(2, 3), vol_window=5, volume_window=4)
    described = describe_features(horizons=(2, 3), vol_window=5, volume_window=4)
    assert frame.columns == [*KEYS, *described]


@pytest.mark.parametrize("h", HORIZONS)
def test_trailing_return_is_close_over_close_h_bars_back(market, features, h):
    closes = per_asset(market, "close")
    for name, got in per_asset(features, f"ret_{h}").items():
        close = closes[name]
        expected = np.full(len(close), np.nan)
        expected[h:] = close[h:] / close[:-h] - 1.0
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_fwd_ret_is_the_next_bars_one_bar_return(features):
    ret_1 = per_asset(features, "ret_1")
    for name, fwd in per_asset(features, LABEL).items():
        np.testing.assert_array_equal(fwd[:-1], ret_1[name][1:])
        assert np.isnan(fwd[-1])


def test_volatility_is_the_sample_std_of_the_last_window_returns(features):
    for name, vol in per_asset(features, "vol_21").items():
        ret_1 = per_asset(features, "ret_1")[name]
        expected = np.full(len(ret_1), np.nan)
        for i in range(21, len(ret_1)):
            expected[i] = np.std(ret_1[i - 20 : i + 1], ddof=1)
        np.testing.assert_allclose(vol, expected, rtol=1e-9, atol=0)


def test_volume_z_scores_log_volume_against_the_previous_window(market, features):
    volumes = per_asset(market, "volume")
    for name, z in per_asset(features, "volume_z").items():
        log_volume = np.log(volumes[name])
        expected = np.full(len(log_volume), np.nan)
        for i in range(21, len(log_volume)):
            past = log_volume[i - 21 : i]
            expected[i] = (log_volume[i] - past.mean()) / past.std(ddof=1)
        np.testing.assert_allclose(z, expected, rtol=1e-9, atol=1e-12)


def test_each_asset_history_starts_with_nulls(features):
    first_valid = {f"ret_{h}": h for h in HORIZONS} | {"vol_21": 21, "volume_z": 21}
    for column, n_null in first_valid.items():
        for name, values in per_asset(features, column).items():
            assert np.isnan(values[:n_null]).all(), (column, name)
            assert np.isfinite(values[n_null]), (column, name)


def test_an_asset_listed_late_starts_with_nulls(market):
    calendar = market["timestamp"].unique().sort()
    late = market.filter((pl.col("asset") != "A0002") | (pl.col("timestamp") >= calendar[100]))
    frame = compute_features(late).filter(pl.col("asset") == "A0002")
    assert frame["timestamp"][0] == calendar[100]
    for column in FEATURES:
        assert frame[column][0] is None, column
    assert frame["ret_5"].head(5).is_null().all()
    assert frame["ret_5"][5] is not None
    assert frame["ret_63"].is_null().all()


@pytest.mark.parametrize("cut", [0, 30, 64, 100, 148])
def test_features_at_or_before_t_ignore_every_later_bar(market, features, cut):
    t = market["timestamp"].unique().sort()[cut]
    later = pl.col("timestamp") > t
    noise = pl.Series(np.random.default_rng(cut).uniform(0.5, 2.0, market.height))
    perturbed = market.with_columns(
        pl.when(later).then(pl.col(c) * noise).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close", "volume")
    )
    before = compute_features(perturbed).filter(~later)
    assert_frame_equal(before.select(*KEYS, *FEATURES), features.filter(~later).select(
        *KEYS, *FEATURES))
    label_known = pl.col("timestamp").shift(-1).over("asset") <= t
    assert_frame_equal(
        before.filter(label_known).select(LABEL),
        features.filter(~later).filter(label_known).select(LABEL),
    )


def test_returns_and_volume_z_ignore_price_and_volume_units(market, features):
    rescaled = compute_features(
        market.with_columns(pl.col("close") * 37.0, pl.col("volume") * 1000.0)
    )
    for column in FEATURE_DESCRIPTIONS:
        np.testing.assert_allclose(
            rescaled[column].fill_null(np.nan).to_numpy(),
            features[column].fill_null(np.nan).to_numpy(),
            rtol=1e-9, atol=1e-12, err_msg=column,
        )


def test_zero_volume_gives_no_volume_z_while_in_the_window(market):
    zeroed = market.with_columns(
        pl.when((pl.col("asset") == "A0001") & (pl.int_range(pl.len()).over("asset") == 40))
        .then(0.0)
        .otherwise(pl.col("volume"))
        .alias("volume")
    )
    z = compute_features(zeroed).filter(pl.col("asset") == "A0001")["volume_z"]
    assert z.slice(40, 22).is_null().all()
    assert z[62] is not None


def test_input_is_not_mutated(market):
    copy = market.clone()
    compute_features(market)
    assert_frame_equal(market, copy)


def test_bad_settings_raise(market):
    with pytest.raises(ValueError, match="horizons"):
        compute_features(market, horizons=(0, 5))
    with pytest.raises(ValueError, match="vol_window"):
        compute_features(market, vol_window=1)
    with pytest.raises(ValueError, match="lack columns"):
        compute_features(market.drop("volume"))
