"""`tradegap demo`: the seed's engine (engine/demo/story.py), its risk manager wired in,
reports hundreds of times the manual loop's return, and the analysis explains the gap by
exactly the planted bugs, in a first sentence of at most three root causes and a plot
whose onset labels do not overlap."""

from __future__ import annotations

import pytest

from engine.data.synthetic import generate_market, momentum_scores
from engine.demo import run_engine
from engine.demo.generator import Market, build
from engine.demo.judging import judge
from engine.demo.story import CASH, DATA_SEED, EVERY, FEES, TOP, run_demo, seed_wiring
from engine.gap.report import WHAT_WENT_WRONG, headline, onset_labels
from engine.reference import run_reference
from pipelines.cli import main

pytestmark = pytest.mark.slow


def test_the_seed_engine_reports_hundreds_of_times_the_manual_loops_return():
    wiring = seed_wiring(1260)
    assert {b.name for b in wiring.bugs} == {"second_portfolio", "stale_cash", "risk_manager",
                                             "double_dispatch"}
    prices = generate_market(500, 1260, seed=DATA_SEED, gaps=False)
    engine = run_engine(prices, momentum_scores(prices), k=TOP, every=EVERY, fees=FEES,
                        cash=CASH, wiring=wiring)
    manual = run_reference(prices, engine.weights, {"fees": FEES, "initial_cash": CASH})
    manual_return = manual.final_equity / CASH - 1
    assert 0.0 < manual_return < 2.0
    assert engine.total_return > 100 * manual_return


N_ASSETS, N_DAYS = 60, 400


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("story") / "demo", N_ASSETS, N_DAYS)


def test_the_demo_is_explained_by_exactly_its_planted_bugs(demo):
    n_assets, n_days = N_ASSETS, N_DAYS
    prices = generate_market(n_assets, n_days, seed=DATA_SEED, gaps=False)
    truth = build(0, Market(n_assets, n_days, DATA_SEED, TOP, EVERY, 1.0, FEES), prices,
                  momentum_scores(prices), seed_wiring(n_days))
    assert all(p.changed for p in truth.planted)
    assert truth.fills.equals(demo.engine.fills)
    judgement = judge(truth, demo.analysis)
    assert judgement.verdict == "explained"
    assert judgement.right, "\n".join(judgement.problems)
    faults = demo.analysis.summary["faults"]
    assert {f["cause"] for f in faults} == {"accumulation", "cash_limit", "duplicate_fill",
                                            "exit_rule"}
    doubled = [f["what"] for f in faults if f["cause"] == "duplicate_fill"]
    assert len(doubled) == 1
    assert doubled[0].startswith("every fill booked twice as it executes (logged once) since")
    rule = next(f["what"] for f in faults if f["cause"] == "exit_rule")
    assert rule.startswith("exits at 15.0% below the entry's fill price")
    sentence = headline(demo.analysis.summary)
    named = [c for c, words in WHAT_WENT_WRONG.items() if words in sentence]
    assert 1 <= len(named) <= 3 and set(named) <= {f["cause"] for f in faults}


def test_the_demo_plot_labels_every_onset_without_overlaps(demo):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faults = demo.analysis.summary["faults"]
    figure, axes = plt.subplots(figsize=(10, 3), dpi=100)
    axes.set_xlim(demo.analysis.curves["timestamp"][0], demo.analysis.curves["timestamp"][-1])
    boxes = onset_labels(axes, faults)
    plt.close(figure)
    assert len(boxes) == len(faults) >= 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


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
