"""Per-bar features and the next-bar label from long market bars.

In: bars `timestamp, asset, open, high, low, close, volume`, unique per (timestamp, asset).
Out: one row per bar, sorted by (timestamp, asset): `timestamp, asset`, the feature columns
and `fwd_ret`. Windows count an asset's own bars, not calendar timestamps, so a missing bar
makes the next return span the gap. Every feature of a row uses only that asset's bars up to
and including the row's timestamp (known at its close); `fwd_ret` is the one column that
looks ahead, and it is the label. A value without enough history is null, never zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

LABEL = "fwd_ret"
REQUIRED = ("timestamp", "asset", "close", "volume")
DEFAULT_HORIZONS = (1, 5, 21, 63)
DEFAULT_VOL_WINDOW = 21
DEFAULT_VOLUME_WINDOW = 21


def describe_features(
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    vol_window: int = DEFAULT_VOL_WINDOW,
    volume_window: int = DEFAULT_VOLUME_WINDOW,
) -> dict[str, str]:
    """Column name → meaning for `compute_features` called with these settings."""
    described = {
        f"ret_{h}": f"simple return close[t] / close[t-{h}] - 1 over the asset's last {h} bars;"
        f" null on its first {h} bars"
        for h in horizons
    }
    described[f"vol_{vol_window}"] = (
        f"sample std (ddof=1) of the asset's last {vol_window} one-bar simple returns;"
        f" null on its first {vol_window} bars"
    )
    described["volume_z"] = (
        f"(log volume[t] - mean) / std, mean and std (ddof=1) of log volume over the asset's"
        f" {volume_window} bars before t; null on its first {volume_window} bars, after a"
        " zero volume in the window, or when that std is 0"
    )
    described[LABEL] = (
        "label: next-bar simple return close[next] / close[t] - 1 of the asset, known only at"
        " its next bar's close; null on the asset's last bar"
    )
    return described


FEATURE_DESCRIPTIONS = describe_features()


def compute_features(
    bars: pl.DataFrame,
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    vol_window: int = DEFAULT_VOL_WINDOW,
    volume_window: int = DEFAULT_VOLUME_WINDOW,
) -> pl.DataFrame:
    """Trailing returns, volatility and volume surprise per bar, plus the `fwd_ret` label."""
    missing = [name for name in REQUIRED if name not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}")
    if not horizons or any(h < 1 for h in horizons) or len(set(horizons)) != len(horizons):
        raise ValueError(f"horizons must be distinct integers >= 1, got {tuple(horizons)}")
    if vol_window < 2 or volume_window < 2:
        raise ValueError(
            f"vol_window and volume_window must be at least 2, got {vol_window}, {volume_window}"
        )

    def per_asset(expr: pl.Expr) -> pl.Expr:
        return expr.over("asset", order_by="timestamp")

    close = pl.col("close").cast(pl.Float64)
    volume = pl.col("volume").cast(pl.Float64)
    log_volume = pl.when(volume > 0).then(volume.log())
    returns = [
        (close / per_asset(close.shift(h)) - 1.0).alias(f"ret_{h}") for h in sorted(horizons)
    ]
    one_bar = close / per_asset(close.shift(1)) - 1.0
    past_volume = pl.col("_log_volume").shift(1)
    volume_mean = per_asset(past_volume.rolling_mean(volume_window, min_samples=volume_window))
    volume_std = per_asset(past_volume.rolling_std(volume_window, min_samples=volume_window))
    return (
        bars.lazy()
        .select(
            "timestamp",
            "asset",
            *returns,
            one_bar.alias("_one_bar"),
            log_volume.alias("_log_volume"),
            (per_asset(close.shift(-1)) / close - 1.0).alias(LABEL),
        )
        .with_columns(
            per_asset(pl.col("_one_bar").rolling_std(vol_window, min_samples=vol_window)).alias(
                f"vol_{vol_window}"
            ),
            pl.when(volume_std > 0)
            .then((pl.col("_log_volume") - volume_mean) / volume_std)
            .alias("volume_z"),
        )
        .select(
            "timestamp",
            "asset",
            *(f"ret_{h}" for h in sorted(horizons)),
            f"vol_{vol_window}",
            "volume_z",
            LABEL,
        )
        .sort("timestamp", "asset")
        .collect()
    )


class DegenerateFeature(UserWarning):
    """A feature column dropped before fitting: it has no value, or no variance."""


def degenerate_features(features: pl.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """The `columns` a model cannot learn from, each with the reason: no value on any row
    (null or NaN throughout, as `volume_z` is when the volume never changes), or one value
    on every row that has one (no variance)."""
    finite = [pl.col(c).cast(pl.Float64).filter(pl.col(c).cast(pl.Float64).is_finite())
              for c in columns]
    stats = features.select(
        *(f.len().alias(f"{c}:n") for f, c in zip(finite, columns, strict=True)),
        *(f.min().alias(f"{c}:min") for f, c in zip(finite, columns, strict=True)),
        *(f.max().alias(f"{c}:max") for f, c in zip(finite, columns, strict=True)),
    ).row(0, named=True)
    found = {}
    for column in columns:
        if stats[f"{column}:n"] == 0:
            found[column] = "no value on any row (null or NaN throughout)"
        elif stats[f"{column}:min"] == stats[f"{column}:max"]:
            found[column] = f"no variance (every row is {stats[f'{column}:min']:g})"
    return found
