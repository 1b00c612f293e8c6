"""`tradegap gap` on files: read two sides (fill files or backtest folders), write the report.

A backtest folder (as `tradegap backtest` writes it) gives fills, the equity curve and the
settings used; a fills file (Parquet or CSV: `timestamp, asset, quantity, price, fee`) gives
fills only, and the rest is inferred.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from engine.core.config import BacktestConfig
from engine.data.loading import load_fills, load_prices, load_weights
from engine.errors import InputError
from engine.gap.analyze import GapAnalysis, Side, analyze
from engine.gap.report import render_markdown, render_png
from engine.reference import rules_for
from engine.results.artifacts import claim_output, to_json, write_output

OUTPUTS = ("gap_fills.parquet", "gap_summary.json", "gap_report.md", "gap_report.png")


def read_side(source: str | Path, prices: pl.DataFrame) -> tuple[Side, BacktestConfig | None]:
    """One side from a backtest folder or a fills file, with its settings when known."""
    path = Path(source)
    if not path.exists():
        raise InputError(str(source), "no such file or folder")
    if not path.is_dir():
        return Side(load_fills(path, prices), name=path.name), None
    fills_file = path / "fills.parquet"
    if not fills_file.is_file():
        raise InputError(str(source), "folder has no fills.parquet (not a backtest output)")
    fills = load_fills(fills_file, prices, name=f"{path.name}/fills.parquet")
    equity = pl.read_parquet(path / "equity.parquet") if (path / "equity.parquet").is_file() \
        else None
    config = None
    if (path / "metrics.json").is_file():
        saved = json.loads((path / "metrics.json").read_text()).get("config")
        config = BacktestConfig.from_dict(saved) if saved else None
    rules = rules_for(config) if config else None
    return Side(fills.select("timestamp", "asset", "quantity", "price", "fee"), equity,
                rules, path.name), config


def run_gap(
    a: str | Path, b: str | Path, prices: str | Path, out: str | Path,
    weights: str | Path | None = None, cash: float | None = None, force: bool = False,
) -> GapAnalysis:
    """Analyze B against A and write the four outputs into `out` (replaced atomically).

    `out` must be new, empty or an earlier gap report (`artifacts.claim_output`) and may not
    contain an input; that is checked before any work.
    """
    inputs = (a, b, prices, weights)
    claim_output(out, "gap", inputs, force)
    bars = load_prices(prices)
    side_a, config_a = read_side(a, bars)
    side_b, _ = read_side(b, bars)
    targets = load_weights(weights, bars, allow_short=True, allow_leverage=True) \
        if weights else None
    initial_cash = cash or (config_a.initial_cash if config_a else 1_000_000.0)
    analysis = analyze(side_a, side_b, bars, targets, initial_cash)

    def fill(tmp: Path) -> None:
        analysis.gap_fills.write_parquet(tmp / "gap_fills.parquet")
        (tmp / "gap_summary.json").write_text(to_json(analysis.summary))
        (tmp / "gap_report.md").write_text(render_markdown(analysis))
        (tmp / "gap_report.png").write_bytes(render_png(analysis))

    write_output(out, "gap", fill, inputs, force)
    return analysis
