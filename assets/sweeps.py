"""A parameter sweep: the engine backtest over a grid of strategy and execution settings.

The grid is top-K × rebalance interval × fee × fill timing. Top-K × rebalance interval is a
two-dimensional partition (`top_k`: `k25`, `every`: `every21`) shared by one asset per
execution setting (`sweep_fee10bp_next_open`): a run of one partition is six independent
steps an executor spreads over its workers (Dask: `pipelines/executors.py`), and a backfill
over the 16 partitions runs all 96 parameter sets. `sweep_summary` compares every
materialized one.
"""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
)

from assets.backtests import engine_tables, finish
from assets.groups import SWEEP
from assets.reports import equity_plot, report_metadata, summary_rows
from assets.resources import ArtifactStore, ExecutionSettings
from assets.types import BacktestTables, SummaryFrame
from engine import run_backtest
from engine.research.weights import top_k_weights

TOP_K = (10, 25, 50, 100)
EVERY = (5, 10, 21, 63)
FEES_BP = (0, 10, 25)
FILLS = ("next_open", "next_close")
PLOTTED = 8  # equity curves drawn in the sweep plot: the best by Sharpe

SWEEP_PARTITIONS = MultiPartitionsDefinition({
    "top_k": StaticPartitionsDefinition([f"k{k}" for k in TOP_K]),
    "every": StaticPartitionsDefinition([f"every{n}" for n in EVERY]),
})


def sweep_key(top_k: int, every: int) -> MultiPartitionKey:
    """The partition key of a strategy setting."""
    return MultiPartitionKey({"top_k": f"k{top_k}", "every": f"every{every}"})


def parse_partition(key: str) -> tuple[int, int]:
    """(top_k, every) from a partition key like `every21|k25`."""
    dimensions = SWEEP_PARTITIONS.get_partition_key_from_str(key).keys_by_dimension
    return int(dimensions["top_k"].removeprefix("k")), int(dimensions["every"].removeprefix(
        "every"))


def sweep_asset_name(fee_bp: int, fill: str) -> str:
    return f"sweep_fee{fee_bp}bp_{fill}"


SWEEP_ASSET_NAMES = [sweep_asset_name(fee, fill) for fee in FEES_BP for fill in FILLS]


def build_sweep_backtest(fee_bp: int, fill: str):
    """The sweep asset of one execution setting, partitioned by strategy setting."""

    @asset(name=sweep_asset_name(fee_bp, fill), group_name=SWEEP,
           partitions_def=SWEEP_PARTITIONS, dagster_type=BacktestTables)
    def sweep_backtest(
        context: AssetExecutionContext, market_data: pl.DataFrame, signals: pl.DataFrame,
        settings: ExecutionSettings,
    ) -> dict[str, pl.DataFrame]:
        """The engine backtest at this fee and fill timing for the partition's top-K and
        rebalance interval."""
        k, every = parse_partition(context.partition_key)
        weights = top_k_weights(signals, k=k, every=every)
        config = settings.config().with_(fees=fee_bp / 10_000, fill=fill)
        result = run_backtest(market_data, weights, config)
        return finish(context, engine_tables(result), (market_data, weights), config)

    return sweep_backtest


SWEEP_BACKTESTS = [build_sweep_backtest(fee, fill) for fee in FEES_BP for fill in FILLS]


def point_label(asset_name: str, partition: str) -> str:
    """`k25 every21 fee10bp next_open`: one parameter set of the grid."""
    k, every = parse_partition(partition)
    return f"k{k} every{every} {asset_name.removeprefix('sweep_').replace('_', ' ', 1)}"


@asset(group_name=SWEEP, dagster_type=SummaryFrame,
       ins={name: AssetIn(name) for name in SWEEP_ASSET_NAMES})
def sweep_summary(
    context: AssetExecutionContext, store: ArtifactStore,
    **sweeps: dict[str, dict[str, pl.DataFrame]],
) -> pl.DataFrame:
    """Headline metrics of every materialized sweep point, best Sharpe first."""
    points = {point_label(name, partition): tables
              for name in SWEEP_ASSET_NAMES for partition, tables in sweeps[name].items()}
    if not points:
        raise FileNotFoundError("no sweep partition is materialized: backfill parameter_sweep")
    summary = summary_rows(dict(sorted(points.items()))).sort(
        "sharpe", descending=True, nulls_last=True)
    best = {name: points[name] for name in summary["backtest"].head(PLOTTED)}
    png = equity_plot(best, f"Sweep: the {len(best)} best of {len(points)} by Sharpe")
    context.add_output_metadata(report_metadata(summary, png, store, "sweep_summary"))
    return summary
