"""A parameter sweep: the engine over a grid of strategy and execution settings, in chunks.

The grid (`SweepGrid`: top-K × rebalance interval × fee × fill timing, 96 points by
default) is dealt round-robin into `CHUNKS` assets. Each chunk is one step that runs its
points in one call on one validated market (`engine.sweep.run_sweep`, threads over the
cores), so a step's overhead is paid once per chunk, not once per backtest; an executor
spreads the chunks over its workers (Dask: `pipelines/executors.py`). A chunk stores each
point's headline metrics and equity curve; `sweep_summary` ranks every point.
"""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, ConfigurableResource, MetadataValue, asset
from pydantic import Field

from assets.groups import SWEEP
from assets.io_manager import markdown_table
from assets.reports import COLUMNS, equity_plot, report_metadata
from assets.resources import ArtifactStore, ExecutionSettings
from assets.types import SummaryFrame, SweepChunk
from engine.sweep import Point, grid, run_sweep

CHUNKS = 4
PLOTTED = 8  # equity curves drawn in the sweep plot: the best by Sharpe


class SweepGrid(ConfigurableResource):
    """The grid: every combination of these values, on the settings resource's defaults."""

    top_k: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])
    every: list[int] = Field(default_factory=lambda: [5, 10, 21, 63])
    fees_bp: list[float] = Field(default_factory=lambda: [0.0, 10.0, 25.0])
    fills: list[str] = Field(default_factory=lambda: ["next_open", "next_close"])
    threads: int = 0  # threads per chunk; 0: the worker's cores

    def points(self) -> list[Point]:
        return grid(self.top_k, self.every, fees=[bp / 10_000 for bp in self.fees_bp],
                    fill=self.fills)

    def chunk(self, index: int) -> list[Point]:
        """The points of chunk `index`: every `CHUNKS`-th point from the `index`-th."""
        return self.points()[index::CHUNKS]


def chunk_name(index: int) -> str:
    return f"sweep_chunk_{index}"


SWEEP_ASSET_NAMES = [chunk_name(index) for index in range(CHUNKS)]


def point_tables(point: Point, result) -> tuple[dict, pl.DataFrame]:
    """A point's metrics row and its equity curve (what a chunk keeps of a result)."""
    metrics = result.metrics
    row = {"backtest": point.label, "top_k": point.top_k, "every": point.every,
           "fees": float(point.settings["fees"]), "fill": point.settings["fill"],
           **{name: metrics[name] for name in COLUMNS}}
    equity = result.equity.select("timestamp", "equity").with_columns(
        backtest=pl.lit(point.label))
    return row, equity.select("backtest", "timestamp", "equity")


def build_sweep_chunk(index: int):
    """The sweep asset of one chunk of the grid."""

    @asset(name=chunk_name(index), group_name=SWEEP, dagster_type=SweepChunk)
    def sweep_chunk(
        context: AssetExecutionContext, market_data: pl.DataFrame, signals: pl.DataFrame,
        settings: ExecutionSettings, sweep_grid: SweepGrid,
    ) -> dict[str, pl.DataFrame]:
        """Every point of this chunk of the grid: metrics and equity curve per point."""
        points = sweep_grid.chunk(index)
        swept = run_sweep(market_data, signals, points, settings.config(),
                          workers=sweep_grid.threads or None, keep=point_tables)
        rows = [row for _, (row, _) in swept]
        points_frame = pl.DataFrame(rows).with_columns(
            pl.col(c).cast(pl.Float64) for c in COLUMNS if c != "n_fills"
        ).with_columns(pl.col("n_fills").cast(pl.Int64), pl.col("top_k").cast(pl.Int64),
                       pl.col("every").cast(pl.Int64)) if rows else empty_points()
        equity = pl.concat([curve for _, (_, curve) in swept]) if swept else pl.DataFrame(
            schema={"backtest": pl.String, "timestamp": pl.Datetime("us"),
                    "equity": pl.Float64})
        context.add_output_metadata({"points": MetadataValue.int(len(points))})
        return {"points": points_frame, "equity": equity}

    return sweep_chunk


def empty_points() -> pl.DataFrame:
    """The points table of a chunk the grid leaves empty."""
    return pl.DataFrame(schema={
        "backtest": pl.String, "top_k": pl.Int64, "every": pl.Int64, "fees": pl.Float64,
        "fill": pl.String, **{c: pl.Float64 for c in COLUMNS if c != "n_fills"},
        "n_fills": pl.Int64})


SWEEP_CHUNKS = [build_sweep_chunk(index) for index in range(CHUNKS)]


@asset(group_name=SWEEP, dagster_type=SummaryFrame,
       ins={name: AssetIn(name) for name in SWEEP_ASSET_NAMES})
def sweep_summary(
    context: AssetExecutionContext, store: ArtifactStore,
    **chunks: dict[str, pl.DataFrame],
) -> pl.DataFrame:
    """Headline metrics of every point of the grid, best Sharpe first."""
    points = pl.concat([chunks[name]["points"] for name in SWEEP_ASSET_NAMES])
    if points.height == 0:
        raise ValueError("the sweep grid has no points: give each axis a value")
    summary = points.select("backtest", *COLUMNS).sort("sharpe", descending=True,
                                                       nulls_last=True)
    equity = pl.concat([chunks[name]["equity"] for name in SWEEP_ASSET_NAMES])
    best = {name: {"equity": equity.filter(pl.col("backtest") == name)}
            for name in summary["backtest"].head(PLOTTED)}
    png = equity_plot(best, f"Sweep: the {len(best)} best of {points.height} by Sharpe")
    context.add_output_metadata({
        **report_metadata(summary, png, store, "sweep_summary"),
        "grid": MetadataValue.md(markdown_table(points.select(
            "backtest", "top_k", "every", "fees", "fill"), rows=min(points.height, 10))),
    })
    return summary
