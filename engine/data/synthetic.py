"""Deterministic synthetic daily market: long bars `timestamp, asset, open, high, low, close,
volume` on business days, sorted by (timestamp, asset); the same seed gives the same frame.

Log returns are a market factor (with slowly varying volatility regimes) plus one of ten
sector factors plus idiosyncratic noise; each asset has its own volatility (15%–60% a year)
and drift. Each bar opens at the previous close times an overnight gap, and
`low ≤ min(open, close) ≤ max(open, close) ≤ high`. About 3% of the assets list late, 3%
delist early, and 0.1% of the bars are missing at random (unless `gaps=False`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

DAYS_PER_YEAR = 252
N_SECTORS = 10
MARKET_VOL = 0.16
MARKET_PREMIUM = 0.06
SECTOR_VOL = 0.10
MIN_IDIO_VOL = 0.08
LATE_OR_EARLY_SHARE = 0.03
MISSING_SHARE = 0.001
REGIME_HALF_LIFE = 60
REGIME_STRENGTH = 0.35


def asset_names(n_assets: int) -> list[str]:
    """Names `A0001`, `A0002`, ... zero-padded so that name order is index order."""
    width = max(4, len(str(n_assets)))
    return [f"A{i + 1:0{width}d}" for i in range(n_assets)]


def business_days(start: str, n_days: int) -> np.ndarray:
    """The first `n_days` weekdays from `start` (rolled forward), as datetime64[us]."""
    first = np.busday_offset(np.datetime64(start, "D"), 0, roll="forward")
    return np.busday_offset(first, np.arange(n_days)).astype("datetime64[us]")


def _volatility_regime(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Market-wide volatility multiplier per day: smooth, lognormal, mean square 1."""
    shocks = rng.standard_normal(n_days + 4 * REGIME_HALF_LIFE)
    decay = 0.5 ** (1 / REGIME_HALF_LIFE)
    kernel = decay ** np.arange(4 * REGIME_HALF_LIFE)
    smooth = np.convolve(shocks, kernel / np.sqrt((kernel**2).sum()), mode="valid")[:n_days]
    return np.exp(REGIME_STRENGTH * smooth - REGIME_STRENGTH**2)


def _listing_mask(rng: np.random.Generator, n_assets: int, n_days: int) -> np.ndarray:
    """(T, N) True where a bar exists: late listings, early delistings, random gaps."""
    day = np.arange(n_days)[:, None]
    first = np.zeros(n_assets, dtype=np.int64)
    last = np.full(n_assets, n_days - 1, dtype=np.int64)
    n_special = round(LATE_OR_EARLY_SHARE * n_assets)
    if n_special and n_days >= 8:
        late = rng.choice(n_assets, n_special, replace=False)
        early = rng.choice(n_assets, n_special, replace=False)
        first[late] = rng.integers(1, n_days // 2, n_special)
        last[early] = rng.integers(n_days // 2, n_days - 1, n_special)
    present = (day >= first) & (day <= last)
    n_missing = rng.binomial(n_days * n_assets, MISSING_SHARE)
    present.ravel()[rng.integers(0, n_days * n_assets, n_missing)] = False
    return present


def _wick(rng: np.random.Generator, shape: tuple[int, int], scale: np.ndarray) -> np.ndarray:
    """exp(|N(0, 1)| × scale): the factor from the body of a bar to its high (or low)."""
    wick = np.abs(rng.standard_normal(shape))
    wick *= scale
    return np.exp(wick, out=wick)


def generate_market(
    n_assets: int = 500,
    n_days: int = 2520,
    seed: int = 0,
    start: str = "2010-01-04",
    *,
    gaps: bool = True,
) -> pl.DataFrame:
    """Synthetic daily bars of `n_assets` assets over `n_days` business days from `start`.

    `gaps=False` keeps every bar (no late listings, delistings or missing bars); the prices
    are the same either way.
    """
    if n_assets < 1 or n_days < 1:
        raise ValueError("n_assets and n_days must be at least 1")
    rng = np.random.default_rng(seed)
    arrays = _bar_arrays(rng, n_assets, n_days)
    present = _listing_mask(rng, n_assets, n_days)
    cells = np.flatnonzero(present.ravel()) if gaps else np.arange(present.size)
    rows, cols = np.divmod(cells, n_assets)
    columns = {
        "timestamp": pl.Series(business_days(start, n_days)[rows], dtype=pl.Datetime("us")),
        "asset": pl.Series(asset_names(n_assets), dtype=pl.String).gather(cols),
    }
    for name in ("open", "high", "low", "close", "volume"):
        columns[name] = arrays.pop(name).ravel()[cells]
    return pl.DataFrame(columns)


def _bar_arrays(rng: np.random.Generator, n_assets: int, n_days: int) -> dict[str, np.ndarray]:
    """(T, N) open, high, low, close and volume of every asset on every day.

    The arrays are updated in place: the large case holds 10M cells per array.
    """
    shape = (n_days, n_assets)
    size = rng.standard_normal(n_assets)
    vol = np.clip(0.30 * np.exp(-0.25 * size + 0.25 * rng.standard_normal(n_assets)), 0.15, 0.60)
    beta = np.clip(rng.normal(1.0, 0.3, n_assets), 0.3, 2.0)
    sector = rng.integers(0, N_SECTORS, n_assets)
    loading = rng.uniform(0.5, 1.5, n_assets)
    systematic = (beta * MARKET_VOL) ** 2 + (loading * SECTOR_VOL) ** 2
    idio_vol = np.sqrt(np.maximum(vol**2 - systematic, MIN_IDIO_VOL**2))
    total_vol = np.sqrt(systematic + idio_vol**2)
    drift = 0.02 + beta * MARKET_PREMIUM + rng.normal(0.0, 0.03, n_assets)
    daily = np.sqrt(DAYS_PER_YEAR)
    day_vol = total_vol / daily

    regime = _volatility_regime(rng, n_days)[:, None]
    market = rng.standard_normal((n_days, 1)) * (MARKET_VOL / daily)
    sectors = rng.standard_normal((n_days, N_SECTORS)) * (SECTOR_VOL / daily)
    log_return = rng.standard_normal(shape)
    log_return *= idio_vol / daily
    log_return += market * beta
    scratch = sectors[:, sector]
    scratch *= loading
    log_return += scratch
    log_return *= regime
    activity = np.abs(log_return, out=scratch)
    activity /= day_vol * regime
    log_return += (drift - 0.5 * total_vol**2) / DAYS_PER_YEAR

    open_ = rng.standard_normal(shape)
    open_ *= 0.2 * day_vol
    open_ -= 0.7 * log_return
    close = np.cumsum(log_return, axis=0, out=log_return)
    close += np.log(rng.lognormal(np.log(40.0), 0.8, n_assets))
    np.exp(close, out=close)
    np.exp(open_, out=open_)
    open_ *= close

    wick = day_vol * regime * 0.5
    high = _wick(rng, shape, wick)
    high *= np.maximum(open_, close)
    low = _wick(rng, shape, -wick)
    low *= np.minimum(open_, close)

    activity *= 0.3
    activity += rng.normal(0.0, 0.3, shape)
    volume = np.exp(activity, out=activity)
    volume *= np.exp(np.log(2e7) + 0.8 * size + rng.normal(0.0, 0.5, n_assets)) * (vol / 0.3)
    volume /= close
    np.rint(volume, out=volume)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


MOMENTUM_LOOKBACK = 21  # bars of the default momentum score


def momentum_scores(market: pl.DataFrame, lookback: int = MOMENTUM_LOOKBACK) -> pl.DataFrame:
    """Trailing `lookback`-bar close-to-close return per asset, known at the close of t.

    Rows `timestamp, asset, score` sorted by (timestamp, asset); an asset's first `lookback`
    bars have no score and are absent.
    """
    if lookback < 1:
        raise ValueError("lookback must be at least 1")
    previous = pl.col("close").shift(lookback).over("asset", order_by="timestamp")
    return (
        market.select("timestamp", "asset", (pl.col("close") / previous - 1.0).alias("score"))
        .drop_nulls("score")
        .sort("timestamp", "asset")
    )


def random_scores(market: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """A score that changes every bar with no memory (like a noisy model's), standard normal
    per (timestamp, asset): ranking on it turns most of a top-k book over every bar.

    Rows `timestamp, asset, score` for every bar of `market`, in its order.
    """
    rng = np.random.default_rng(seed)
    return market.select("timestamp", "asset").with_columns(
        score=pl.Series(rng.standard_normal(market.height)))
