"""What the tests of the engines of other styles share (`test_gap_foreign.py`,
`test_gap_algo.py`): their markets, and the judge of their faults against the analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from engine.data.synthetic import generate_market
from engine.gap.report import headline

UNEXPLAINED_LIMIT = 0.01  # the share of the gap left unexplained with every fault named
NOT_NAMES = {"propagated", "unexplained"}


@dataclass(frozen=True)
class Market:
    """Generated bars; the top `k` held at `invested / k`, rebalanced every `every` bars."""

    n_assets: int = 24
    n_days: int = 160
    seed: int = 7
    k: int = 6
    every: int = 5
    invested: float = 1.0


TIGHT = Market()
SPARE = Market(n_assets=30, n_days=180, seed=12, k=8, every=5, invested=0.9)


@cache
def prices(market: Market) -> pl.DataFrame:
    return generate_market(market.n_assets, market.n_days, market.seed, gaps=False)


def problems_in(summary: dict, traced: Sequence[tuple[Any, int]],
                causes_of: Mapping[str, tuple[str, ...]], bar_of: Mapping[Any, int]
                ) -> list[str]:
    """Where `summary` departs from the truth (empty: it is right). `traced`: each planted
    fault that changed a fill (with `name` and `since`) and the first bar it changed;
    `causes_of`: the causes that name each fault (none: outside the vocabulary)."""
    named = [f for f in summary["faults"] if f["cause"] not in NOT_NAMES]
    allowed = {c for f, _ in traced for c in causes_of[f.name]}
    out = [f"named {f['cause']} ({f['what']}) from {str(f['onset'])[:10]}, which no "
           "planted fault is" for f in named if f["cause"] not in allowed]
    for fault, first in traced:
        causes = causes_of[fault.name]
        if not causes:
            continue
        mine = [f for f in named if f["cause"] in causes and f["side"] == "B"]
        if not mine:
            out.append(f"{fault} changed fills from bar {first}, but no {causes} is named")
        elif not any(fault.since <= bar_of[f["onset"]] <= first for f in mine):
            out.append(f"{fault}: onset at bar {[bar_of[f['onset']] for f in mine]}, not "
                       f"between {fault.since} and {first}")
    inside = all(causes_of[f.name] for f, _ in traced)
    gap = summary["final_equity"]["gap"]
    share = abs(summary["attribution"].get("unexplained", 0.0)) / abs(gap) if gap else 0.0
    if not traced:
        if summary["verdict"] != "identical":
            out.append(f"no fault left a trace, verdict {summary['verdict']}")
    elif inside:
        if summary["verdict"] != "explained":
            out.append(f"verdict {summary['verdict']}, every fault in the vocabulary "
                       f"({share:.1%} unexplained)")
        elif share >= UNEXPLAINED_LIMIT:
            out.append(f"{share:.1%} of the gap unexplained")
    elif summary["verdict"] != "unexplained":
        out.append(f"verdict {summary['verdict']} with a fault outside the vocabulary")
    for fault in sorted(summary["faults"], key=lambda f: -abs(f["share"]))[:3]:
        if fault["cause"] not in allowed | {"unexplained"}:
            out.append(f"the first sentence names {fault['cause']}: {headline(summary)}")
    return out


def assert_explained_as_directly(folder: Path, log: pl.DataFrame, weights: pl.DataFrame,
                                 direct: dict, cash: float, fees: float, *flags: str) -> None:
    """`tradegap explain` on `log` written as CSV (read with `flags`) says what the analysis
    of the same fills in our own format (`direct`) says: explained, the same faults."""
    prices(TIGHT).write_parquet(folder / "prices.parquet")
    weights.write_parquet(folder / "weights.parquet")
    log.write_csv(folder / "b.csv")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "explain", "--fills", str(folder / "b.csv"),
         "--prices", str(folder / "prices.parquet"),
         "--weights", str(folder / "weights.parquet"), "--cash", str(cash),
         "--profile", "tradegap", "--fees", str(fees), *flags, "--out", str(folder / "gap")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((folder / "gap" / "gap_summary.json").read_text())
    assert summary["verdict"] == direct["verdict"] == "explained"
    assert [(f["cause"], f["what"], f["onset"][:10]) for f in summary["faults"]] == [
        (f["cause"], f["what"], str(f["onset"])[:10]) for f in direct["faults"]]
