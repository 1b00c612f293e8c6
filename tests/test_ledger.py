"""The ledger owns cash, positions and fills; the book owns orders; only their kernels write.

The AST checks read every module: outside its owner, no code assigns into an owner's
arrays (`cash`, `positions`, `journal`, `n_fills`; `slots`, `orders`, `n_orders`, `resting`,
`n_resting`), nor into
a name bound to an element of one of them, nor to the owners' private attributes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from engine.core.ledger import Ledger, add_position

ROOT = Path(__file__).resolve().parents[1]
OWNERS = {
    ROOT / "engine" / "core" / "ledger.py": {"cash", "positions", "journal", "n_fills"},
    ROOT / "engine" / "core" / "book.py": {"slots", "orders", "n_orders", "slot", "resting",
                                           "n_resting"},
}
PRIVATE = frozenset({"_cash", "_positions", "_journal", "_n_fills", "_slots", "_orders",
                     "_n_orders", "_resting", "_n_resting"})
# The reference keeps a book of its own by design: it must share nothing with the engine.
# The gap analysis rebuilds each side's book from that side's own fill log (logs.py) and
# replays hypotheses about another engine's (buggy) book (diagnose.py).
OWN_BOOKS = {*(ROOT / "engine" / "reference").glob("*.py"),
             ROOT / "engine" / "gap" / "logs.py", ROOT / "engine" / "gap" / "diagnose.py"}


def _python_files():
    for folder in ("engine", "assets", "pipelines", "schemas"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _writes(tree: ast.AST, state: set[str], private: frozenset[str] = frozenset()) -> list[int]:
    """Lines assigning into `state` arrays, their element aliases, or `private` attributes."""
    lines = []
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)] + [tree]:
        aliases = set(state)
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript) and (
                    _root_name(node.value) in state):
                aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Attribute) and sub.attr in private:
                            lines.append(node.lineno)
                    if isinstance(target, ast.Subscript) and _root_name(target) in aliases:
                        lines.append(node.lineno)
    return sorted(set(lines))


def test_no_module_but_the_owners_writes_ledger_or_book_state():
    every_state = set().union(*OWNERS.values())
    offenders = []
    for path in _python_files():
        if path in OWN_BOOKS:
            continue
        foreign = every_state - OWNERS.get(path, set())
        private = frozenset() if path in OWNERS else frozenset(PRIVATE)
        offenders += [f"{path.relative_to(ROOT)}:{line}"
                      for line in _writes(ast.parse(path.read_text()), foreign, private)]
    assert offenders == []


def test_the_ast_check_sees_a_write_through_an_alias():
    tree = ast.parse("def f(slots, j):\n    slot = slots[j]\n    slot['order_id'] = -1\n")
    assert _writes(tree, {"slots"}) == [3]
    assert _writes(ast.parse("def f(cash):\n    cash[0] += 1.0\n"), {"cash"}) == [2]


def test_inside_the_ledger_only_its_booking_kernel_and_constructor_write_state():
    tree = ast.parse((ROOT / "engine" / "core" / "ledger.py").read_text())
    writers = {fn.name for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
               and _writes(fn, OWNERS[ROOT / "engine" / "core" / "ledger.py"], PRIVATE)}
    assert writers == {"__init__", "apply_fills_nb", "reserve"}


def test_positions_are_a_read_only_copy():
    ledger = Ledger(3, 100.0)
    with pytest.raises(ValueError):
        ledger.positions[0] = 5.0
    ledger.apply_fills(0, np.array([1]), np.array([2.0]), np.array([10.0]), np.array([0.5]))
    assert ledger.positions.tolist() == [0.0, 2.0, 0.0]


def test_apply_fills_moves_cash_by_notional_and_fee():
    ledger = Ledger(2, 1_000.0)
    ledger.apply_fills(0, np.array([0, 1]), np.array([-1.0, 3.0]), np.array([10.0, 20.0]),
                       np.array([0.1, 0.2]))
    assert ledger.cash == pytest.approx(1_000.0 + 10.0 - 0.1 - 60.0 - 0.2, rel=1e-15)
    assert ledger.positions.tolist() == [-1.0, 3.0]


def test_two_fills_of_one_asset_in_a_batch_both_count():
    ledger = Ledger(2, 1_000.0)
    ledger.apply_fills(4, np.array([1, 1]), np.array([3.0, 2.0]), np.array([10.0, 11.0]),
                       np.array([1.0, 1.0]), np.array([7, 8]))
    assert ledger.positions.tolist() == [0.0, 5.0]
    assert ledger.cash == 1_000.0 - 30.0 - 1.0 - 22.0 - 1.0
    journal = ledger.fills
    assert journal["quantity"].tolist() == [3.0, 2.0]
    assert journal["order_id"].tolist() == [7, 8]
    assert journal["bar"].tolist() == [4, 4]


def test_the_journal_grows_and_keeps_every_fill():
    ledger = Ledger(1, 1e9, capacity=2)
    for bar in range(10):
        ledger.apply_fills(bar, np.array([0]), np.array([1.0]), np.array([1.0]),
                           np.array([0.0]))
    assert ledger.fills["bar"].tolist() == list(range(10))
    assert ledger.positions[0] == 10.0


def test_selling_the_whole_position_leaves_exactly_zero():
    ledger = Ledger(1, 0.0)
    ledger.apply_fills(0, np.array([0]), np.array([0.1 + 0.2]), np.array([1.0]),
                       np.array([0.0]))
    ledger.apply_fills(1, np.array([0]), np.array([-0.3]), np.array([1.0]), np.array([0.0]))
    assert ledger.positions[0] == 0.0
    assert ledger.cash == 0.0


def test_add_position_keeps_real_remainders():
    assert add_position(1.0, -1.0 + 1e-13) == 0.0
    assert add_position(1.0, -0.5) == 0.5
    assert add_position(1e6, -1e6 + 1e-2) == pytest.approx(1e-2, rel=1e-6)
    assert add_position(1e-13, 1e-13) == 2e-13, "adding to a position never snaps"


def test_value_sums_cash_and_held_positions_only():
    ledger = Ledger(3, 50.0)
    ledger.apply_fills(0, np.array([0]), np.array([2.0]), np.array([10.0]), np.array([0.0]))
    assert ledger.value(np.array([12.0, np.nan, np.nan])) == 50.0 - 20.0 + 24.0
