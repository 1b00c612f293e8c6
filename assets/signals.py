"""The signal stage: features, a walk-forward ML score, and top-K target weights."""

import functools
import warnings

import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, asset

from assets.groups import SIGNALS
from assets.resources import ExecutionSettings
from assets.types import FeaturesFrame, ScoresFrame, WeightsFrame
from engine.data.loading import load_signals, load_weights
from engine.research.features import DegenerateFeature, compute_features
from engine.research.signals import Ridge, walk_forward_scores
from engine.research.weights import top_k_weights


class SignalsConfig(Config):
    """The walk-forward model, or `signals_path` to use the user's own scores instead;
    `skip` computes none (an empty table) when the target weights come from a file."""

    signals_path: str | None = None
    skip: bool = False
    train_window: int = 252
    refit_every: int = 21
    ridge_alpha: float = 1.0


class StrategyConfig(Config):
    """Hold the top `top_k` assets by score at equal weight, rebalancing every `every` bars,
    or trade the user's own target weights from `weights_path`."""

    top_k: int = 25
    every: int = 21
    weights_path: str | None = None


@asset(group_name=SIGNALS, dagster_type=FeaturesFrame)
def features(market_data: pl.DataFrame) -> pl.DataFrame:
    """Lagged returns, volatility and volume features per bar, plus the next-bar label."""
    return compute_features(market_data)


@asset(group_name=SIGNALS, dagster_type=ScoresFrame)
def signals(
    context: AssetExecutionContext, config: SignalsConfig, features: pl.DataFrame,
    market_data: pl.DataFrame,
) -> pl.DataFrame:
    """Walk-forward ridge score of each asset's next-bar return, refit on a rolling window."""
    if config.signals_path:
        scores = load_signals(config.signals_path, market_data)
        context.add_output_metadata({"source": MetadataValue.path(config.signals_path)})
        return scores
    if config.skip:
        context.add_output_metadata({"source": MetadataValue.text(
            "none: the target weights come from a file")})
        return pl.DataFrame(schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                    "score": pl.Float64})
    model = functools.partial(Ridge, alpha=config.ridge_alpha)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = walk_forward_scores(features, model, train_window=config.train_window,
                                     refit_every=config.refit_every)
    for warning in caught:
        context.log.warning(str(warning.message))
    context.add_output_metadata({
        "source": MetadataValue.text(
            f"ridge(alpha={config.ridge_alpha}), window {config.train_window}, "
            f"refit every {config.refit_every}"),
        "scored_bars": MetadataValue.int(scores.height),
        "dropped_features": MetadataValue.text("; ".join(
            str(w.message) for w in caught if issubclass(w.category, DegenerateFeature))
            or "none"),
    })
    return scores


@asset(group_name=SIGNALS, dagster_type=WeightsFrame)
def target_weights(
    context: AssetExecutionContext, config: StrategyConfig, signals: pl.DataFrame,
    market_data: pl.DataFrame, settings: ExecutionSettings,
) -> pl.DataFrame:
    """Top-K by score at equal weight every N bars (defaults: 25 at 4%, every 21 bars)."""
    if config.weights_path:
        weights = load_weights(config.weights_path, market_data,
                               allow_short=settings.allow_short,
                               allow_leverage=settings.allow_leverage)
        context.add_output_metadata({"source": MetadataValue.path(config.weights_path),
                                     "rebalances": MetadataValue.int(
                                         weights["timestamp"].n_unique())})
        return weights
    weights = top_k_weights(signals, k=config.top_k, every=config.every)
    context.add_output_metadata({
        "rebalances": MetadataValue.int(weights["timestamp"].n_unique()),
        "top_k": MetadataValue.int(config.top_k),
        "every": MetadataValue.int(config.every),
    })
    return weights
