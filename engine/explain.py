"""`tradegap explain`: a user's own fill log against our engine run on the same inputs.

Side A is the tradegap engine (the reference's rules, parity-tested) run on the prices and
the same decisions (target weights, an order table, or scores turned into top-k weights)
under the profile and settings given, so A's rules, stops included, are known. Side B is
the user's log as their engine or broker wrote it (`engine.logs`). The analysis then says
where and why B departs from those rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.backtest import run_backtest, run_orders
from engine.core.config import BacktestConfig
from engine.data.loading import FILL_COLUMNS, load_prices, load_signals, load_weights
from engine.data.market import Market
from engine.errors import InputError
from engine.gap.analyze import GapAnalysis, Side, analyze
from engine.gap.files import write_outputs
from engine.logs import LogOptions, NativeLog, read_log
from engine.reference import rules_for
from engine.research.weights import top_k_weights
from engine.results.artifacts import claim_output


@dataclass(frozen=True)
class Decisions:
    """What both sides traded: one of target weights, an order table, or scores (turned
    into equal weights on the `top` best every `every` bars, the pipeline's strategy)."""

    weights: str | Path | pl.DataFrame | None = None
    orders: str | Path | pl.DataFrame | None = None
    signals: str | Path | pl.DataFrame | None = None
    top: int = 25
    every: int = 21


@dataclass(frozen=True)
class Explained:
    """The analysis, and the log as it was read (its format and what that leaves out)."""

    analysis: GapAnalysis
    log: NativeLog


def run_explain(
    fills: str | Path | pl.DataFrame, prices: str | Path | pl.DataFrame, out: str | Path,
    decisions: Decisions, config: BacktestConfig, log: LogOptions | None = None,
    force: bool = False,
) -> Explained:
    """Explain the log `fills` against our engine under `config`; write the outputs (`out`
    is checked first: new, empty or an earlier gap output, never holding an input)."""
    given = [d for d in (decisions.weights, decisions.orders, decisions.signals)
             if d is not None]
    if len(given) != 1:
        raise InputError("command line", "give one of --weights, --orders or --signals")
    inputs = tuple(path for path in (fills, prices, *given) if not isinstance(
        path, pl.DataFrame))
    claim_output(out, "gap", inputs, force)
    bars = load_prices(prices)
    native = read_log(fills, bars, log,
                      name=None if not isinstance(fills, pl.DataFrame) else "fills")
    market = Market.from_bars(bars)
    targets = None
    if decisions.orders is not None:
        result = run_orders(market, decisions.orders, config)
    else:
        if decisions.signals is not None:
            scores = load_signals(decisions.signals, bars)
            targets = top_k_weights(scores, k=decisions.top, every=decisions.every)
        else:
            targets = load_weights(decisions.weights, bars, allow_short=True,
                                   allow_leverage=True)
        result = run_backtest(market, targets, config)
    reference = Side(result.fills.select(FILL_COLUMNS), result.equity, rules_for(config),
                     f"tradegap ({config.profile})")
    name = Path(fills).name if not isinstance(fills, pl.DataFrame) else "your log"
    mine = Side(native.fills.select(FILL_COLUMNS), name=name)
    analysis = analyze(reference, mine, bars, targets, config.initial_cash)
    write_outputs(analysis, out, inputs, force)
    return Explained(analysis, native)
