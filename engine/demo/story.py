"""`tradegap demo`: the story tradegap was built for, rebuilt on generated data.

A research team's event-driven engine ranked 500 assets by momentum and held the top 25 at
4% each, rebalanced every 21 days; it reported returns hundreds of times those of a plain
loop on the same decisions. Its engine is this package's, wired as theirs was: the
strategy reads positions from a second portfolio object that never receives fills (so it
buys whole targets again and never sells), the broker's cash check reads the balance the
account opened with, a risk manager places stop-loss exits 15% below each entry that no
decision made, and from the middle of the run the bus delivers every fill to the broker's
portfolio a second time as it executes. `run_demo` runs it and the reference loop, and
explains the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.data.synthetic import generate_market, momentum_scores
from engine.demo.engine import EngineRun, run_engine
from engine.demo.wiring import Bug, Wiring
from engine.gap.analyze import GapAnalysis, Side, analyze
from engine.gap.report import render_markdown, render_png
from engine.reference import rules_for, run_reference
from engine.results.artifacts import claim_output, to_json, write_output

FEES = 0.001
CASH = 1_000_000.0
DATA_SEED = 2
TOP, EVERY = 25, 21


def seed_wiring(n_days: int) -> Wiring:
    """The seed's wiring bugs: a second portfolio, a stale cash check, a risk manager
    exiting 15% below each entry, and from halfway through the run a double dispatch."""
    return Wiring((Bug("second_portfolio"), Bug("stale_cash", param="opening"),
                   Bug("risk_manager", param=0.15),
                   Bug("double_dispatch", since=n_days // 2, param="as_executed")))


@dataclass(frozen=True)
class Demo:
    """The engine's run, the manual loop's final equity and the analysis of the gap."""

    engine: EngineRun
    manual_equity: float
    analysis: GapAnalysis

    @property
    def manual_return(self) -> float:
        return self.manual_equity / CASH - 1.0


def run_demo(out: str | Path, n_assets: int = 500, n_days: int = 1260,
             force: bool = False) -> Demo:
    """The seed's engine against the reference loop on generated data; reports in `out`
    (new, empty or an earlier demo output: checked before any work)."""
    claim_output(out, "demo", force=force)
    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=DATA_SEED, gaps=False)
    scores = momentum_scores(prices)
    engine = run_engine(prices, scores, k=TOP, every=EVERY, fees=FEES, cash=CASH,
                        wiring=seed_wiring(n_days))
    weights = engine.weights
    manual = run_reference(prices, weights, {"fees": FEES, "initial_cash": CASH})
    manual_fills = manual.fills.select("timestamp", "asset", "quantity", "price", "fee")
    analysis = analyze(Side(manual_fills, rules=rules_for({"fees": FEES}), name="manual loop"),
                       Side(engine.fills, name="event-driven engine"), prices, weights, CASH)

    def fill(tmp: Path) -> None:
        prices.write_parquet(tmp / "prices.parquet")
        weights.write_parquet(tmp / "weights.parquet")
        engine.fills.write_parquet(tmp / "engine_fills.parquet")
        engine.equity.write_parquet(tmp / "engine_equity.parquet")
        manual_fills.write_parquet(tmp / "manual_fills.parquet")
        (tmp / "planted.json").write_text(to_json(
            [{"bug": b.name, "since": str(prices["timestamp"].unique().sort()[b.since])[:10],
              "param": b.param} for b in engine.wiring.bugs]))
        (tmp / "gap_summary.json").write_text(to_json(analysis.summary))
        (tmp / "gap_report.md").write_text(render_markdown(analysis))
        (tmp / "gap_report.png").write_bytes(render_png(analysis))

    write_output(out, "demo", fill, force=force)
    return Demo(engine, manual.final_equity, analysis)


def planted_words(wiring: Wiring, timestamps: pl.Series) -> list[str]:
    """One line per planted bug, for the demo's printout."""
    words = {"second_portfolio": "the strategy reads positions from a second portfolio "
                                 "object that never receives fills",
             "stale_cash": "the broker's cash check reads the balance the account opened with",
             "risk_manager": "a risk manager exits {pct} below each entry (no decision)",
             "double_dispatch": "the bus books every fill a second time as it executes"}
    lines = []
    for bug in wiring.bugs:
        text = words.get(bug.name, bug.name).format(
            pct=f"{bug.param:.0%}" if isinstance(bug.param, float) else "")
        since = "from the start" if bug.since == 0 else \
            f"from {str(timestamps[bug.since])[:10]}"
        lines.append(f"{text}, {since}")
    return lines
