"""The ledger is the one owner of cash and positions, and `apply_fills` the one mutator."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from engine.core.ledger import Ledger, snap_to_zero

ROOT = Path(__file__).resolve().parents[1]
LEDGER_STATE = {"_cash", "_positions", "_view"}
# The reference keeps a book of its own by design: it must share nothing with the engine,
# and the gap analysis replays other engines' (buggy) books with it.
OWN_BOOKS = {ROOT / "engine" / "core" / "ledger.py", *(ROOT / "engine" / "reference").glob("*.py")}


def _python_files():
    for folder in ("engine", "assets", "pipelines", "schemas"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def _touches_ledger_state(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in LEDGER_STATE:
            lines.append(node.lineno)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and sub.attr in {"cash", "positions"}:
                        lines.append(node.lineno)
    return lines


def test_no_module_but_the_ledger_touches_ledger_state():
    offenders = []
    for path in _python_files():
        if path in OWN_BOOKS:
            continue
        for line in _touches_ledger_state(ast.parse(path.read_text())):
            offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == []


def test_only_apply_fills_assigns_ledger_state_inside_the_ledger():
    tree = ast.parse((ROOT / "engine" / "core" / "ledger.py").read_text())
    writers = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Ledger"):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        for sub in ast.walk(target):
                            if isinstance(sub, ast.Attribute) and sub.attr in LEDGER_STATE:
                                writers.add(fn.name)
    assert writers == {"__init__", "apply_fills"}


def test_positions_are_a_read_only_view():
    ledger = Ledger(3, 100.0)
    with pytest.raises(ValueError):
        ledger.positions[0] = 5.0
    ledger.apply_fills(np.array([1]), np.array([2.0]), np.array([10.0]), np.array([0.5]))
    assert ledger.positions.tolist() == [0.0, 2.0, 0.0]


def test_apply_fills_moves_cash_by_notional_and_fee():
    ledger = Ledger(2, 1_000.0)
    ledger.apply_fills(np.array([0, 1]), np.array([-1.0, 3.0]), np.array([10.0, 20.0]),
                       np.array([0.1, 0.2]))
    assert ledger.cash == pytest.approx(1_000.0 + 10.0 - 0.1 - 60.0 - 0.2, rel=1e-15)
    assert ledger.positions.tolist() == [-1.0, 3.0]


def test_selling_the_whole_position_leaves_exactly_zero():
    ledger = Ledger(1, 0.0)
    ledger.apply_fills(np.array([0]), np.array([0.1 + 0.2]), np.array([1.0]), np.array([0.0]))
    ledger.apply_fills(np.array([0]), np.array([-0.3]), np.array([1.0]), np.array([0.0]))
    assert ledger.positions[0] == 0.0
    assert ledger.cash == 0.0


def test_snap_to_zero_keeps_real_remainders():
    out = snap_to_zero(np.array([1.0, 1.0, 1e6]), np.array([-1.0 + 1e-13, -0.5, -1e6 + 1e-2]))
    assert out.tolist() == [0.0, 0.5, pytest.approx(1e-2, rel=1e-6)]


def test_value_sums_cash_and_held_positions_only():
    ledger = Ledger(3, 50.0)
    ledger.apply_fills(np.array([0]), np.array([2.0]), np.array([10.0]), np.array([0.0]))
    assert ledger.value(np.array([12.0, np.nan, np.nan])) == 50.0 - 20.0 + 24.0
