"""`tradegap demo`: the seed's engine (engine/demo/story.py) reports hundreds of times the
manual loop's return, and the analysis explains the gap by exactly the planted bugs."""

from __future__ import annotations

import pytest

from engine.data.synthetic import generate_market, momentum_scores
from engine.demo import run_engine
from engine.demo.generator import Market, build
from engine.demo.judging import judge
from engine.demo.story import CASH, DATA_SEED, EVERY, FEES, TOP, run_demo, seed_wiring
from engine.reference import run_reference
from pipelines.cli import main

pytestmark = pytest.mark.slow


def test_the_seed_engine_reports_hundreds_of_times_the_manual_loops_return():
    prices = generate_market(500, 1260, seed=DATA_SEED, gaps=False)
    engine = run_engine(prices, momentum_scores(prices), k=TOP, every=EVERY, fees=FEES,
                        cash=CASH, wiring=seed_wiring(1260))
    manual = run_reference(prices, engine.weights, {"fees": FEES, "initial_cash": CASH})
    manual_return = manual.final_equity / CASH - 1
    assert 0.0 < manual_return < 2.0
    assert engine.total_return > 100 * manual_return


def test_the_demo_is_explained_by_exactly_its_planted_bugs(tmp_path):
    n_assets, n_days = 60, 400
    demo = run_demo(tmp_path / "demo", n_assets, n_days)
    prices = generate_market(n_assets, n_days, seed=DATA_SEED, gaps=False)
    truth = build(0, Market(n_assets, n_days, DATA_SEED, TOP, EVERY, 1.0, FEES), prices,
                  momentum_scores(prices), seed_wiring(n_days))
    assert all(p.changed for p in truth.planted)
    assert truth.fills.equals(demo.engine.fills)
    judgement = judge(truth, demo.analysis)
    assert judgement.verdict == "explained"
    assert judgement.right, "\n".join(judgement.problems)


def test_the_demo_command_prints_the_planted_bugs_the_returns_and_the_verdict(tmp_path,
                                                                             capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--assets", "30",
                 "--days", "200"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("planted: the strategy reads positions from a second")
    assert printed[2].startswith("returns: engine ") and "manual loop" in printed[2]
    assert printed[3].split(":")[0] in ("explained", "unexplained")
    for name in ("gap_report.md", "gap_report.png", "gap_summary.json", "planted.json",
                 "engine_fills.parquet"):
        assert (tmp_path / "demo" / name).is_file()
