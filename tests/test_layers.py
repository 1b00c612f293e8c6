"""The import graph has layers and no cycles.

Each package may import its own layer and the layers below it, never one above; the
packages of one layer do not import each other. Every `import` counts, inside functions too
(a lazy import hides a dependency, it does not remove it). From the bottom:

- `schemas`: the pandera models and the closed word lists; they import nothing of ours, so
  the engine and the pipeline can both read them.
- `engine.errors`, `engine.progress`, `engine.jit`, `engine.memory`, `engine.data`,
  `engine.core`: errors, progress bars, numba's set-up and malloc's, input loading, then
  the simulation core beside the readers of other engines' and brokers' trade logs
  (`engine.logs`).
- `engine.results`: tables, metrics, parity checks and the one fill comparison.
- `engine.reference`, `engine.peers`, `engine.research`: the independent reference (it
  imports nothing else of the engine), the peer adapters, signals and weights.
- `engine.gap`: the trade-gap analysis, over the reference and the results.
- `engine.backtest`, then `engine` itself: the public entry points (`engine.explain` runs
  our engine, then the gap analysis, on a user's log; `engine.sweep` runs grids).
- `assets`: the Dagster assets with their resources, types and IO manager.
- `pipelines`: definitions, jobs, sensors, the CLI; only they assemble.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from assets.versions import imports_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "engine", "assets", "pipelines")
LAYERS = [
    ["schemas"],
    ["engine.errors", "engine.progress", "engine.jit", "engine.memory"],
    ["engine.data"],
    ["engine.core", "engine.logs"],
    ["engine.results"],
    ["engine.reference", "engine.peers", "engine.research"],
    ["engine.gap"],
    ["engine.backtest"],
    ["engine"],
    ["assets"],
    ["pipelines"],
]
INDEPENDENT = {"engine.reference": {"engine.reference", "engine.errors", "schemas"}}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the project modules it imports (anywhere in its body)."""
    known = modules(root)

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for base, names in imports_of(path, name):
            for target in [f"{base}.{n}" for n in names] or [base]:
                module = owner(target)
                if module and module != name:
                    graph[name].add(module)
    return graph


def layer_of(module: str) -> str:
    """The most specific declared layer package that holds `module`."""
    names = [p for layer in LAYERS for p in layer]
    return max((p for p in names if module == p or module.startswith(p + ".")), key=len)


def rank(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a higher layer, or of a sibling package of the same layer."""
    wrong = []
    for source, targets in graph.items():
        for target in targets:
            a, b = layer_of(source), layer_of(target)
            if a != b and rank(b) >= rank(a):
                wrong.append(f"{source} ({a}) imports {target} ({b})")
            if a in INDEPENDENT and b not in INDEPENDENT[a]:
                wrong.append(f"{source} imports {target}: {a} stays independent")
    return sorted(wrong)


def test_every_project_package_has_a_layer():
    unplaced = {m for m in modules() if not any(
        m == p or m.startswith(p + ".") for layer in LAYERS for p in layer)}
    assert not unplaced


def test_no_module_imports_a_higher_layer_or_a_sibling():
    assert upward(import_graph()) == []


def test_the_modules_import_each_other_without_cycles():
    assert cycles(import_graph()) == []


def test_schemas_import_nothing_of_the_engine():
    graph = import_graph()
    assert not {t for s, ts in graph.items() if s.startswith("schemas") for t in ts
                if not t.startswith("schemas")}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_new_cycle_and_an_upward_import_are_both_found(tmp_path):
    write(tmp_path, {
        "schemas/__init__.py": "", "engine/__init__.py": "", "assets/__init__.py": "",
        "pipelines/__init__.py": "",
        "schemas/market.py": "def f():\n    from engine.data import loading\n",
        "engine/data/__init__.py": "", "engine/data/loading.py": "from schemas import market\n",
        "pipelines/run.py": "from pipelines import sensors\n",
        "pipelines/sensors.py": "from .run import x\n",
    })
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["engine.data.loading", "schemas.market"],
                             ["pipelines.run", "pipelines.sensors"]]
    assert upward(graph) == ["schemas.market (schemas) imports engine.data.loading "
                             "(engine.data)"]
