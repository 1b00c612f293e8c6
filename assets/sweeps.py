"""A parameter sweep: the engine backtest over strategy settings, one partition each.

Partition keys name the settings (`k25_every21`); run them as a backfill, then
`sweep_summary` compares every materialized partition.
"""

import re

import polars as pl
from dagster import AssetExecutionContext, StaticPartitionsDefinition, asset

from assets.backtests import engine_tables, finish
from assets.groups import SWEEP
from assets.reports import equity_plot, report_metadata, summary_rows
from assets.versions import SIMULATION, code_version
from engine import run_backtest
from engine.research.weights import top_k_weights
from pipelines.resources import ArtifactStore, ExecutionSettings
from pipelines.types import BacktestTables, SummaryFrame

TOP_K = (10, 25, 50)
EVERY = (5, 21)
SWEEP_PARTITIONS = StaticPartitionsDefinition(
    [f"k{k}_every{n}" for k in TOP_K for n in EVERY]
)


def parse_partition(key: str) -> tuple[int, int]:
    """(top_k, every) from a key like `k25_every21`."""
    match = re.fullmatch(r"k(\d+)_every(\d+)", key)
    if not match:
        raise ValueError(f"not a sweep partition: {key!r}")
    return int(match[1]), int(match[2])


@asset(group_name=SWEEP, partitions_def=SWEEP_PARTITIONS, dagster_type=BacktestTables,
       code_version=code_version(*SIMULATION, "research.weights"))
def sweep_backtest(
    context: AssetExecutionContext, market_data: pl.DataFrame, signals: pl.DataFrame,
    settings: ExecutionSettings,
) -> dict[str, pl.DataFrame]:
    """The engine backtest for this partition's top-K and rebalance interval."""
    k, every = parse_partition(context.partition_key)
    weights = top_k_weights(signals, k=k, every=every)
    result = run_backtest(market_data, weights, settings.config())
    return finish(context, engine_tables(result), (market_data, weights), settings.config())


@asset(group_name=SWEEP, dagster_type=SummaryFrame)
def sweep_summary(
    context: AssetExecutionContext, sweep_backtest: dict[str, dict[str, pl.DataFrame]],
    store: ArtifactStore,
) -> pl.DataFrame:
    """Headline metrics of every materialized sweep partition, best Sharpe first."""
    summary = summary_rows(dict(sorted(sweep_backtest.items()))).sort(
        "sharpe", descending=True, nulls_last=True)
    png = equity_plot(sweep_backtest, "Sweep: top-K × rebalance interval")
    context.add_output_metadata(report_metadata(summary, png, store, "sweep_summary"))
    return summary
