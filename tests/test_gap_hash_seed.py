"""The gap analysis says the same thing, to the last bit, whatever Python's hash seed.

Sets of assets and of switches iterate in an order that changes with `PYTHONHASHSEED`; a
sum or a search that follows that order would name other causes, or other shares, from
one process to the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = """
import sys
from engine.data.synthetic import generate_market, momentum_scores
from engine.demo.generator import Market, build
from engine.demo.judging import analyze_drawn
from engine.demo.wiring import Bug, Wiring
market = Market(37, 182, 987905704, 10, 5, 0.95, 0.001)
prices = generate_market(market.n_assets, market.n_days, market.data_seed, gaps=False)
bugs = (Bug("wrong_bar", 96, 0), Bug("whole_target", 36), Bug("late_cache", 131, 1))
analysis = analyze_drawn(build(0, market, prices, momentum_scores(prices), Wiring(bugs)))
print(repr(analysis.summary))
print(analysis.gap_fills.sort("timestamp", "asset").write_csv())
"""


def _analysis(seed: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", ANALYSIS], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_three_hash_seeds_give_the_same_summary_and_labels():
    first, *others = (_analysis(seed) for seed in (1, 2, 3))
    assert "faults" in first
    assert all(other == first for other in others)
