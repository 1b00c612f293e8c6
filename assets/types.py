"""Dagster types built from the pandera models: a frame that fails its model is never written.

dagster-pandera declares `typing_type=pd.DataFrame`, which breaks polars IO routing, so the
types are built here from `DataFrameModel`s directly.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandera.errors
import polars as pl
from dagster import DagsterType, TypeCheck

from schemas import backtest, gap, market, reports, signals, sweep

BACKTEST_MODELS = {
    "fills": backtest.Fills,
    "orders": backtest.Orders,
    "positions": backtest.Positions,
    "equity": backtest.Equity,
    "trades": backtest.Trades,
}


def _check(model, frame: pl.DataFrame) -> str | None:
    try:
        model.validate(frame, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as error:
        return " ".join(str(error).split())[:500]
    return None


def frame_type(name: str, model) -> DagsterType:
    """A DagsterType accepting polars frames that pass `model`."""

    def check(_, value) -> TypeCheck:
        if not isinstance(value, pl.DataFrame):
            return TypeCheck(False, f"expected a polars DataFrame, got {type(value).__name__}")
        problem = _check(model, value)
        return TypeCheck(problem is None, problem or f"{value.height} rows pass {name}",
                         metadata={"rows": value.height})

    return DagsterType(check, name=name, description=model.__doc__, typing_type=pl.DataFrame)


def tables_type(name: str, models: Mapping[str, object]) -> DagsterType:
    """A DagsterType for a dict of named frames, each passing its model."""

    def check(_, value) -> TypeCheck:
        if not isinstance(value, Mapping):
            return TypeCheck(False, f"expected a dict of frames, got {type(value).__name__}")
        missing = sorted(set(models) - set(value))
        if missing:
            return TypeCheck(False, f"missing tables: {', '.join(missing)}")
        for table, model in models.items():
            problem = _check(model, value[table])
            if problem:
                return TypeCheck(False, f"{table}: {problem}")
        return TypeCheck(True, f"{len(models)} tables pass their models")

    return DagsterType(check, name=name, description=f"Tables: {', '.join(models)}",
                       typing_type=dict)


BarsFrame = frame_type("Bars", market.Bars)
WeightsFrame = frame_type("Weights", market.Weights)
FeaturesFrame = frame_type("Features", signals.Features)
ScoresFrame = frame_type("Scores", signals.Scores)
SummaryFrame = frame_type("PerformanceSummary", reports.PerformanceSummary)
PeerEnginesFrame = frame_type("PeerEngines", reports.PeerEngines)
BacktestTables = tables_type("BacktestTables", BACKTEST_MODELS)
GapTables = tables_type("GapTables", {"summary": gap.GapSummary})
SweepChunk = tables_type("SweepChunk", {"points": sweep.SweepPoints, "equity": sweep.SweepEquity})
