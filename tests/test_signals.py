"""walk_forward_scores and Ridge: scores never see the future, models are pluggable."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.data.synthetic import generate_market
from engine.errors import InputError
from engine.research.features import LABEL, compute_features
from engine.research.signals import Ridge, walk_forward_scores

SETTINGS = {"train_window": 60, "refit_every": 10, "min_train_rows": 100}


def dense_market(n_assets: int, n_bars: int, seed: int) -> pl.DataFrame:
    """Random-walk bars with every asset present at every timestamp."""
    rng = np.random.default_rng(seed)
    close = 30 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_bars, n_assets)), axis=0))
    volume = np.exp(rng.normal(13.0, 0.5, (n_bars, n_assets)))
    times = np.datetime64("2024-01-01", "us") + np.arange(n_bars) * np.timedelta64(1, "D")
    return pl.DataFrame({
        "timestamp": pl.Series(np.repeat(times, n_assets), dtype=pl.Datetime("us")),
        "asset": [f"A{j}" for j in range(n_assets)] * n_bars,
        "open": close.ravel(), "high": close.ravel(), "low": close.ravel(),
        "close": close.ravel(), "volume": volume.ravel(),
    })


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return generate_market(n_assets=12, n_days=170, seed=5)


@pytest.fixture(scope="module")
def scores(market: pl.DataFrame) -> pl.DataFrame:
    return walk_forward_scores(compute_features(market), **SETTINGS)


def perturb(bars: pl.DataFrame, where: pl.Expr, seed: int) -> pl.DataFrame:
    """Prices and volumes multiplied by random factors on the rows `where` selects."""
    noise = pl.Series(np.random.default_rng(seed).uniform(0.5, 2.0, bars.height))
    return bars.with_columns(
        pl.when(where).then(pl.col(c) * noise).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close", "volume")
    )


class FitCounter:
    """Stub model: predicts how many models were fit so far, so scores reveal refit dates."""

    fits = 0

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        FitCounter.fits += 1
        self.number = FitCounter.fits

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), float(self.number))


class Recorder:
    """Stub model: keeps what it was trained on; predicts a constant."""

    seen: ClassVar[list[tuple[np.ndarray, np.ndarray]]] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        Recorder.seen.append((X.copy(), y.copy()))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), 0.5)


def refit_dates(features: pl.DataFrame, **settings) -> list[dt.datetime]:
    """Timestamps at which a new model starts scoring, read off FitCounter scores."""
    FitCounter.fits = 0
    counted = walk_forward_scores(features, model_factory=FitCounter, **settings)
    first = counted.group_by("score").agg(pl.col("timestamp").min()).sort("score")
    return first["timestamp"].to_list()


def test_ridge_recovers_a_noiseless_linear_relation():
    X = np.random.default_rng(0).normal(size=(200, 3)) * [1.0, 10.0, 0.01] + [0.0, 5.0, -2.0]
    model = Ridge(alpha=0.0)
    model.fit(X, 1.5 + X @ [2.0, -1.0, 40.0])
    np.testing.assert_allclose(model.coefficients, [2.0, -1.0, 40.0], rtol=1e-10)
    assert model.intercept == pytest.approx(1.5, rel=1e-10)


def test_ridge_alpha_shrinks_standardized_coefficients_toward_zero():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + 0.7 + rng.normal(0, 0.1, 100)
    norms = []
    for alpha in (0.0, 1.0, 10.0, 100.0, 1e8):
        model = Ridge(alpha=alpha)
        model.fit(X, y)
        norms.append(np.linalg.norm(model.coefficients * X.std(axis=0)))
    assert (np.diff(norms) < 0).all()
    assert norms[-1] < 1e-5
    assert model.intercept == pytest.approx(y.mean() - X.mean(axis=0) @ model.coefficients)


def test_ridge_gives_a_constant_column_no_weight():
    X = np.column_stack([np.arange(10.0), np.full(10, 3.0)])
    model = Ridge(alpha=0.0)
    model.fit(X, 2.0 * X[:, 0] + 1.0)
    np.testing.assert_allclose(model.coefficients, [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(model.predict(X), 2.0 * X[:, 0] + 1.0, rtol=1e-12)


def test_ridge_scores_each_row_on_its_own():
    rng = np.random.default_rng(2)
    model = Ridge()
    model.fit(rng.normal(size=(50, 5)), rng.normal(size=50))
    X = rng.normal(size=(37, 5))
    alone = np.concatenate([model.predict(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(model.predict(X), alone)


def test_scores_are_float64_rows_sorted_by_timestamp_and_asset(scores):
    assert scores.schema == pl.Schema(
        {"timestamp": pl.Datetime("us"), "asset": pl.String, "score": pl.Float64}
    )
    assert_frame_equal(scores, scores.sort("timestamp", "asset"))
    assert scores.height > 0
    assert scores["score"].is_finite().all()


@pytest.mark.parametrize("cut", [70, 99, 100, 101, 135, 168])
def test_scores_at_or_before_t_ignore_every_later_bar(market, scores, cut):
    t = market["timestamp"].unique().sort()[cut]
    later = pl.col("timestamp") > t
    rerun = walk_forward_scores(compute_features(perturb(market, later, cut)), **SETTINGS)
    assert_frame_equal(rerun.filter(~later), scores.filter(~later))
    assert not rerun.filter(later).equals(scores.filter(later))


def test_the_close_after_a_refit_date_is_not_a_training_label_at_it(market, scores):
    features = compute_features(market)
    refit = refit_dates(features, **SETTINGS)[1]
    calendar = market["timestamp"].unique().sort()
    following = calendar[calendar.index_of(refit) + 1]
    changed = market.with_columns(
        pl.when(pl.col("timestamp") == following).then(pl.col("close") * 1.5)
        .otherwise(pl.col("close"))
    )
    rerun = walk_forward_scores(compute_features(changed), **SETTINGS)
    up_to = pl.col("timestamp") <= refit
    assert_frame_equal(rerun.filter(up_to), scores.filter(up_to))
    assert not rerun.equals(scores)


def test_a_label_spanning_a_missing_bar_waits_for_the_next_bar(market):
    features = compute_features(market)
    refit = refit_dates(features, **SETTINGS)[1]
    calendar = market["timestamp"].unique().sort()
    following = calendar[calendar.index_of(refit) + 1]
    gap = market.filter((pl.col("asset") != "A0003") | (pl.col("timestamp") != refit))
    scores = walk_forward_scores(compute_features(gap), **SETTINGS)
    changed = gap.with_columns(
        pl.when((pl.col("asset") == "A0003") & (pl.col("timestamp") == following))
        .then(pl.col("close") * 1.5)
        .otherwise(pl.col("close"))
    )
    rerun = walk_forward_scores(compute_features(changed), **SETTINGS)
    up_to = pl.col("timestamp") <= refit
    assert_frame_equal(rerun.filter(up_to), scores.filter(up_to))
    assert not rerun.equals(scores)


def test_refits_every_refit_every_timestamps_from_the_first_with_enough_rows():
    features = compute_features(dense_market(n_assets=10, n_bars=140, seed=0))
    calendar = features["timestamp"].unique().sort()
    dates = refit_dates(features, train_window=252, refit_every=7, min_train_rows=50)
    # Rows have every feature from bar 63 (ret_63) and their label one bar later, so at bar
    # r there are 10 × (r - 63) training rows: 50 first at bar 68.
    assert dates == calendar.gather(range(68, 140, 7)).to_list()


def test_training_uses_only_the_trailing_window():
    Recorder.seen = []
    features = compute_features(dense_market(n_assets=10, n_bars=140, seed=0))
    walk_forward_scores(features, model_factory=Recorder, train_window=20, refit_every=7,
                        min_train_rows=50)
    # Refits at bars 68, 75, ...: the window [r - 20, r) holds rows with features from bar 63.
    assert [len(y) for _, y in Recorder.seen] == [50, 120, 190] + [200] * 8


def test_a_refit_date_short_of_rows_leaves_its_block_unscored():
    features = compute_features(dense_market(n_assets=10, n_bars=140, seed=0))
    bar = pl.col("timestamp").rank("dense") - 1
    holed = features.with_columns(
        pl.when(bar.is_between(88, 95)).then(None).otherwise(pl.col("ret_1")).alias("ret_1")
    )
    scored = walk_forward_scores(holed, model_factory=Recorder, train_window=5, refit_every=7,
                                 min_train_rows=50)
    # Refits at bars 68, 75, ..., 96, 103: the one at 96 finds no rows in [91, 96).
    scored_bars = holed.with_columns(bar=bar).join(scored, on=["timestamp", "asset"])["bar"]
    assert sorted(scored_bars.unique()) == [*range(68, 88), *range(103, 140)]


def test_a_stub_model_from_the_factory_scores_every_row_with_features(market):
    Recorder.seen = []
    features = compute_features(market)
    stubbed = walk_forward_scores(features, model_factory=Recorder, **SETTINGS)
    assert (stubbed["score"] == 0.5).all()
    assert Recorder.seen
    for X, y in Recorder.seen:
        assert X.shape == (len(y), 6) and len(y) >= SETTINGS["min_train_rows"]
        assert np.isfinite(X).all() and np.isfinite(y).all()
    # Every row with all features from the first refit on, including rows with no label yet.
    with_features = features.filter(pl.col("timestamp") >= stubbed["timestamp"].min()).drop(
        LABEL).drop_nulls()
    assert_frame_equal(stubbed.select("timestamp", "asset"),
                       with_features.select("timestamp", "asset"))
    assert stubbed["timestamp"].max() == features["timestamp"].max()


def test_feature_columns_choose_the_model_inputs(market):
    Recorder.seen = []
    walk_forward_scores(compute_features(market), model_factory=Recorder,
                        feature_columns=["ret_5", "vol_21"], **SETTINGS)
    assert {X.shape[1] for X, _ in Recorder.seen} == {2}


def test_a_model_predicting_the_wrong_number_of_rows_is_a_bug(market):
    class Broken(Recorder):
        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.zeros(len(X) + 1)

    with pytest.raises(ValueError, match="predicted"):
        walk_forward_scores(compute_features(market), model_factory=Broken, **SETTINGS)


def test_too_little_history_is_an_error_that_says_why(market):
    features = compute_features(market)
    with pytest.raises(InputError, match=r"^signals: too few training rows: at most \d+ rows "
                       r"with every feature in a 252-bar training window, min_train_rows is "
                       r"1000000$"):
        walk_forward_scores(features, min_train_rows=10**6)


def test_bad_settings_raise(market):
    features = compute_features(market)
    with pytest.raises(ValueError, match="refit_every"):
        walk_forward_scores(features, refit_every=0)
    with pytest.raises(ValueError, match="lack columns"):
        walk_forward_scores(features.drop(LABEL))
