"""`tradegap gap` on files: read two sides (fill files or backtest folders), write the report.

A backtest folder (as `tradegap backtest` writes it) gives fills, the equity curve and the
settings used; a fill log (ours, `timestamp, asset, quantity, price, fee`, or one an engine
or broker wrote: `engine.logs`) gives fills only, and its rules are given or inferred.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from engine.core.config import BacktestConfig
from engine.data.loading import FILL_COLUMNS, load_fills, load_prices, load_weights
from engine.errors import InputError
from engine.gap.analyze import GapAnalysis, Side, analyze
from engine.gap.report import render_markdown, render_png
from engine.logs import LogOptions, read_log
from engine.reference import Rules, rules_for
from engine.results.artifacts import claim_output, to_json, write_output

OUTPUTS = ("gap_fills.parquet", "gap_summary.json", "gap_report.md", "gap_report.png")


def read_side(
    source: str | Path, prices: pl.DataFrame, log: LogOptions | None = None,
    rules: Rules | None = None,
) -> tuple[Side, BacktestConfig | None]:
    """One side from a backtest folder or a fill log (any format `engine.logs` reads), with
    its settings when known; a bare log takes `rules` (None: inferred by the analysis)."""
    path = Path(source)
    if not path.exists():
        raise InputError(str(source), "no such file or folder")
    if not path.is_dir():
        fills = read_log(path, prices, log).fills.select(FILL_COLUMNS)
        return Side(fills, rules=rules, name=path.name), None
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
    weights: str | Path | None = None, cash: float | None = None,
    log: LogOptions | None = None, a_config: BacktestConfig | None = None,
    force: bool = False, log_a: LogOptions | None = None,
) -> GapAnalysis:
    """Analyze B against A and write the four outputs into `out` (replaced atomically).

    `log` says how fill logs are read, `log_a` how A's is where it differs (two engines'
    logs in two forms); `a_config` gives a bare log as A its rules. `out`
    must be new, empty or an earlier gap report (`artifacts.claim_output`) and may not
    contain an input; that is checked before any work.
    """
    inputs = (a, b, prices, weights)
    claim_output(out, "gap", inputs, force)
    bars = load_prices(prices)
    side_a, config_a = read_side(a, bars, log_a or log, rules_for(a_config) if a_config else None)
    config_a = config_a or a_config
    side_b, _ = read_side(b, bars, log)
    targets = load_weights(weights, bars, allow_short=True, allow_leverage=True) \
        if weights else None
    initial_cash = cash or (config_a.initial_cash if config_a else 1_000_000.0)
    analysis = analyze(side_a, side_b, bars, targets, initial_cash)
    write_outputs(analysis, out, inputs, force)
    return analysis


def write_outputs(analysis: GapAnalysis, out: str | Path, inputs: tuple = (),
                  force: bool = False) -> None:
    """The four outputs of an analysis, into `out` (replaced atomically; a gap output)."""

    def fill(tmp: Path) -> None:
        analysis.gap_fills.write_parquet(tmp / "gap_fills.parquet")
        (tmp / "gap_summary.json").write_text(to_json(analysis.summary))
        (tmp / "gap_report.md").write_text(render_markdown(analysis))
        (tmp / "gap_report.png").write_bytes(render_png(analysis))

    write_output(out, "gap", fill, inputs, force)
