"""An analysis on two cores is the analysis on one: the same faults, labels, amounts and
curves, whichever part ran in the forked child; the child's failures surface here."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from engine.data.synthetic import generate_market, momentum_scores
from engine.demo.generator import Market, build
from engine.demo.judging import analyze_drawn
from engine.demo.wiring import Bug, Wiring
from engine.gap import attribute, diagnose, fork
from engine.gap.stages import diagnose as stages_diagnose


def test_both_returns_each_part_and_the_child_ran_elsewhere():
    here = os.getpid()
    child, mine = fork.both(lambda: (os.getpid(), np.arange(5.0)), lambda: os.getpid())
    assert mine == here
    assert (child[0] != here) == (fork.workers() == 2)
    assert child[1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_child_forks_no_further_and_draws_no_progress():
    def settings() -> tuple[int, str | None]:
        return fork.workers(), os.environ.get("TRADEGAP_PROGRESS")

    child, _ = fork.both(settings, lambda: None)
    assert fork.workers() == 2
    assert child == (1, "0")


def test_a_failure_in_the_child_is_raised_here():
    def broken() -> None:
        raise ValueError("no such bar: 7")

    with pytest.raises(ValueError, match="no such bar: 7"):
        fork.both(broken, lambda: 1)


def test_a_failure_here_leaves_no_child_behind(monkeypatch):
    forked = []
    real_fork = os.fork

    def recorded() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    def broken() -> None:
        raise KeyError("asset")

    monkeypatch.setattr(os, "fork", recorded)
    with pytest.raises(KeyError):
        fork.both(lambda: 1, broken)
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # stopped and reaped
        os.waitpid(forked[0], os.WNOHANG)


def test_a_child_killed_from_outside_leaves_its_part_to_be_done_here():
    here = os.getpid()

    def part() -> str:
        if os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)
        return "done here"

    assert fork.both(part, lambda: 2) == ("done here", 2)


def test_one_worker_when_asked(monkeypatch):
    monkeypatch.setenv("TRADEGAP_WORKERS", "1")
    assert fork.workers() == 1
    here = os.getpid()
    assert fork.both(os.getpid, os.getpid) == (here, here)


def test_the_seeds_wiring_diagnosed_on_two_cores_equals_one(monkeypatch):
    """Four causes on B (its attribution splits its replays between the two processes),
    A diagnosed beside B's first pass, and the bars with several departures shared out
    however few they are."""
    market = Market(60, 200, 3, 6, 21, 1.0, 0.001)
    bugs = (Bug("late_cache", 0, 1), Bug("stale_cash", 0, "first_buy"),
            Bug("risk_manager", 0, 0.08), Bug("double_dispatch", 120, "as_executed"))
    prices = generate_market(market.n_assets, market.n_days, market.data_seed, gaps=False)
    drawn = build(0, market, prices, momentum_scores(prices), Wiring(bugs))
    assert fork.workers() == 2, "the machine this runs on has a second core"
    monkeypatch.setattr(diagnose, "MIN_FORKED", 1)
    parts = []
    real_both = fork.both

    def counted(first, second):
        parts.append(first)
        return real_both(first, second)

    monkeypatch.setattr(fork, "both", counted)
    for module in (diagnose, stages_diagnose, attribute):
        monkeypatch.setattr(module, "both", counted)
    two = analyze_drawn(drawn)
    forked = {part.__qualname__.split(".<locals>")[0] for part in parts}
    assert {"diagnose", "Diagnoser.record_all_needed", "Game._replay_all"} <= forked
    monkeypatch.setenv("TRADEGAP_WORKERS", "1")
    one = analyze_drawn(drawn)
    assert len(two.summary["attribution"]) >= 3
    assert two.summary == one.summary
    assert two.faults == one.faults
    assert two.gap_fills.equals(one.gap_fills)
    assert two.curves.equals(one.curves)
