"""The report stage: headline metrics of every backtest and their equity curves."""

import io

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, asset

from assets.groups import REPORT
from assets.io_manager import image_markdown, markdown_table
from assets.resources import ArtifactStore
from assets.types import SummaryFrame

COLUMNS = ("final_equity", "total_return", "cagr", "sharpe", "max_drawdown", "turnover",
           "n_fills")


def summary_rows(backtests: dict[str, dict[str, pl.DataFrame]]) -> pl.DataFrame:
    """One row per backtest with its headline metrics."""
    rows = []
    for name, tables in backtests.items():
        metrics = tables["metrics"].row(0, named=True)
        rows.append({"backtest": name, **{c: metrics[c] for c in COLUMNS}})
    return pl.DataFrame(rows).with_columns(
        pl.col(c).cast(pl.Float64) for c in COLUMNS if c != "n_fills"
    ).with_columns(pl.col("n_fills").cast(pl.Int64))


def equity_plot(backtests: dict[str, dict[str, pl.DataFrame]], title: str) -> bytes:
    """PNG of every backtest's equity curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    for name, tables in backtests.items():
        equity = tables["equity"]
        ax.plot(equity["timestamp"].to_numpy(), equity["equity"].to_numpy(), label=name,
                linewidth=1.2)
    ax.set_title(title)
    ax.set_ylabel("equity")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def report_metadata(
    summary: pl.DataFrame, png: bytes, store: ArtifactStore, name: str
) -> dict[str, object]:
    """The summary table and the equity plot (saved beside the artifacts), as metadata."""
    return {
        "summary": MetadataValue.md(markdown_table(summary, rows=summary.height)),
        "equity_curves": image_markdown(png, "equity curves"),
        "plot_path": MetadataValue.path(str(store.write_file(f"{name}.png", png))),
    }


def build_performance_summary(backtest_names: list[str]):
    """The `performance_summary` asset over the named backtest assets."""

    @asset(name="performance_summary", group_name=REPORT, dagster_type=SummaryFrame,
           ins={name: AssetIn(name) for name in backtest_names})
    def performance_summary(
        context: AssetExecutionContext, store: ArtifactStore,
        **backtests: dict[str, pl.DataFrame],
    ) -> pl.DataFrame:
        """Headline metrics per backtest, with an equity-curve plot."""
        ordered = {name: backtests[name] for name in backtest_names}
        summary = summary_rows(ordered)
        png = equity_plot(ordered, "Equity")
        context.add_output_metadata(report_metadata(summary, png, store,
                                                    "performance_summary"))
        return summary

    return performance_summary
