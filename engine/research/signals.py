"""Walk-forward ML scores: a model refit on trailing known labels scores each later bar.

In: features from `engine.research.features.compute_features`, one row per bar (`timestamp, asset`,
feature columns, label `fwd_ret`). Out: `timestamp, asset, score` (Float64) sorted by
(timestamp, asset), only for scored rows.

Timing. Bars are indexed on the calendar of all timestamps. The label of a row is the
return to the asset's next bar, so it is known at the close of that next bar, which is
usually the next timestamp but later across a missing bar. At a refit date `r` the model
is fit on the rows at `t` in `[r - train_window, r)` whose label is known by the close of
`r` and whose features and label are finite. It then scores every row with finite features
at timestamps from `r` up to the next refit date, from that row's features alone. So a
score at `t` depends only on bars at or before `t`.

Schedule. The first refit date is the first timestamp with at least `min_train_rows`
training rows; the next ones follow every `refit_every` timestamps. A refit date with fewer
rows fits nothing and its block has no scores. Each refit builds a fresh model from the
factory.

Features. By default every feature column is used except the degenerate ones (no value on
any row, or no variance), each dropped with a `DegenerateFeature` warning that names it. No
scored row at all is an `InputError` that says why (for example "no training rows: every
row has a null feature").

Scores are the model's raw predictions of the next-bar return, not demeaned, ranked or
scaled across assets: within one timestamp only their order matters to a top-k rule.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import polars as pl

from engine.errors import InputError
from engine.research.features import LABEL, DegenerateFeature, degenerate_features

NO_LABEL = np.iinfo(np.int64).max


class Model(Protocol):
    """A regressor the walk-forward loop can refit: rows of X are bars, y their labels."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> None: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


class Ridge:
    """Closed-form ridge regression on standardized features, with an unpenalized intercept.

    Minimizes `|y - b - Zw|² + alpha |w|²` where `Z` is X standardized by the training mean
    and std (a constant column gets std 1), then reports `coefficients` and `intercept` in
    the units of X, so `predict(X) = intercept + X @ coefficients`.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.coefficients: np.ndarray | None = None
        self.intercept = 0.0

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on (n, k) X and (n,) y; a singular system gets the minimum-norm solution."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        mean = X.mean(axis=0)
        centered = X - mean
        cross = centered.T @ centered
        std = np.sqrt(np.diag(cross) / len(X))
        std[std == 0] = 1.0
        y_mean = y.mean()
        gram = cross / np.outer(std, std) + self.alpha * np.eye(X.shape[1])
        weights = np.linalg.lstsq(gram, centered.T @ (y - y_mean) / std, rcond=None)[0]
        self.coefficients = weights / std
        self.intercept = float(y_mean - mean @ self.coefficients)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """`intercept + X @ coefficients`, row by row (a row's score ignores other rows)."""
        if self.coefficients is None:
            raise RuntimeError("Ridge.predict called before fit")
        return (np.asarray(X, dtype=float) * self.coefficients).sum(axis=1) + self.intercept


def walk_forward_scores(
    features: pl.DataFrame,
    model_factory: Callable[[], Model] = Ridge,
    train_window: int = 252,
    refit_every: int = 21,
    min_train_rows: int = 500,
    feature_columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Out-of-sample scores `timestamp, asset, score` from a model refit walking forward.

    `feature_columns` defaults to every column except `timestamp`, `asset` and `fwd_ret`,
    less the degenerate ones (dropped with a `DegenerateFeature` warning). Raises
    `InputError` with the reason when no row can be scored.
    """
    if train_window < 1 or refit_every < 1 or min_train_rows < 1:
        raise ValueError(
            "train_window, refit_every and min_train_rows must be at least 1, got "
            f"{train_window}, {refit_every}, {min_train_rows}"
        )
    keys = ("timestamp", "asset", LABEL)
    if feature_columns is None:
        feature_columns = [name for name in features.columns if name not in keys]
        dropped = degenerate_features(features, feature_columns)
        for name, reason in dropped.items():
            warnings.warn(f"feature {name} dropped: {reason}", DegenerateFeature, stacklevel=2)
        if dropped and len(dropped) == len(feature_columns):
            raise InputError("features", "no usable feature: " + "; ".join(
                f"{name}: {reason}" for name, reason in dropped.items()))
        feature_columns = [name for name in feature_columns if name not in dropped]
    missing = [name for name in (*keys, *feature_columns) if name not in features.columns]
    if missing:
        raise ValueError(f"features lack columns {missing}")
    if not feature_columns:
        raise ValueError("no feature columns to fit on")

    rows = features.sort("timestamp", "asset")
    calendar = rows["timestamp"].unique().sort().to_numpy()
    next_bar = rows.select(pl.col("timestamp").shift(-1).over("asset", order_by="timestamp"))
    bar = np.searchsorted(calendar, rows["timestamp"].to_numpy())
    label_bar = np.searchsorted(calendar, next_bar.to_series().to_numpy())
    label_bar[next_bar.to_series().is_null().to_numpy()] = NO_LABEL
    X = rows.select(pl.col(feature_columns).cast(pl.Float64)).to_numpy()
    y = rows[LABEL].cast(pl.Float64).to_numpy()

    scores, scored = walk_forward_arrays(
        X, y, bar, label_bar, len(calendar), model_factory,
        train_window, refit_every, min_train_rows,
    )
    if not scored.any():
        raise InputError("signals", _why_nothing_scored(X, y, bar, label_bar, feature_columns,
                                                        train_window, min_train_rows))
    return rows.select("timestamp", "asset").with_columns(
        pl.Series("score", scores, dtype=pl.Float64)
    ).filter(pl.Series(scored))


def _why_nothing_scored(
    X: np.ndarray, y: np.ndarray, bar: np.ndarray, label_bar: np.ndarray,
    columns: Sequence[str], train_window: int, min_train_rows: int,
) -> str:
    """Why `walk_forward_arrays` scored no row, in the words of a one-line error."""
    if not len(X):
        return "no training rows: the features table is empty"
    finite = np.isfinite(X)
    if not finite.all(axis=1).any():
        worst = int(np.argmin(finite.sum(axis=0)))
        return (f"no training rows: every row has a null feature ({columns[worst]} is null "
                f"on {int((~finite[:, worst]).sum())} of {len(X)} rows)")
    trainable = finite.all(axis=1) & np.isfinite(y) & (label_bar != NO_LABEL)
    if not trainable.any():
        return ("no training rows: no row with every feature has a known next-bar return")
    rows = bar[trainable]
    most = int((np.searchsorted(rows, rows, side="right")
                - np.searchsorted(rows, rows - train_window + 1)).max())
    if most >= min_train_rows:
        return ("no row to score: no row with every feature comes after the first refit "
                "date with enough training rows")
    return (f"too few training rows: at most {most} rows with every feature in a "
            f"{train_window}-bar training window, min_train_rows is {min_train_rows}")


def walk_forward_arrays(
    X: np.ndarray,
    y: np.ndarray,
    bar: np.ndarray,
    label_bar: np.ndarray,
    n_bars: int,
    model_factory: Callable[[], Model],
    train_window: int,
    refit_every: int,
    min_train_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel of `walk_forward_scores` on rows sorted by `bar` (their calendar index).

    `label_bar` is the calendar index at which each row's label becomes known (`NO_LABEL`
    if never). Returns the scores and a mask of the rows that were scored.
    """
    has_features = np.isfinite(X).all(axis=1)
    trainable = has_features & np.isfinite(y) & (label_bar != NO_LABEL)
    train_rows = np.flatnonzero(trainable)
    train_starts = np.searchsorted(bar[train_rows], np.arange(n_bars + 1))
    bar_starts = np.searchsorted(bar, np.arange(n_bars + 1))

    def training_rows(refit: int) -> np.ndarray:
        window = train_rows[train_starts[max(refit - train_window, 0)]: train_starts[refit]]
        return window[label_bar[window] <= refit]

    refits = np.arange(n_bars)
    in_window = train_starts[refits] - train_starts[np.maximum(refits - train_window, 0)]
    candidates = np.flatnonzero(in_window >= min_train_rows)
    first = next((r for r in candidates if len(training_rows(r)) >= min_train_rows), n_bars)
    scores = np.full(len(X), np.nan)
    scored = np.zeros(len(X), dtype=bool)
    for refit in range(first, n_bars, refit_every):
        fit_rows = training_rows(refit)
        if len(fit_rows) < min_train_rows:
            continue
        block = np.arange(bar_starts[refit], bar_starts[min(refit + refit_every, n_bars)])
        block = block[has_features[block]]
        if not len(block):
            continue
        model = model_factory()
        model.fit(X[fit_rows], y[fit_rows])
        predictions = np.asarray(model.predict(X[block]), dtype=float).reshape(-1)
        if len(predictions) != len(block):
            raise ValueError(
                f"model predicted {len(predictions)} values for {len(block)} rows"
            )
        scores[block] = predictions
        scored[block] = True
    return scores, scored
