"""Code versions: a digest of every project module an asset module runs, so the UI marks
staleness.

The modules are found from the import graph, not listed by hand: starting from the asset's
module, every `import` and `from ... import` of a project package (`engine`, `schemas`,
`assets`, `pipelines`), at any depth and inside functions too, with the packages'
`__init__` modules Python runs on the way. Editing any of them changes the version.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "schemas", "assets", "pipelines")

Reader = Callable[[Path], bytes]


def module_path(name: str) -> Path | None:
    """The source file of project module `name`, or None if it is not one."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, name: str) -> list[tuple[str, tuple[str, ...]]]:
    """Every import in module `name` (at `path`), anywhere in its body: (module, names) with
    relative imports resolved; `import a.b` gives ("a.b", ())."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((base, tuple(alias.name for alias in node.names)))
    return found


@functools.cache
def _direct_imports(name: str) -> frozenset[str]:
    """Project modules that module `name` imports (and their parent packages)."""
    path = module_path(name)
    found: set[str] = set()
    for base, names in imports_of(path, name):
        for target in [base, *(f"{base}.{n}" for n in names)]:
            parts = target.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(module for module in found if module_path(module) is not None)


@functools.cache
def project_modules(name: str) -> tuple[str, ...]:
    """`name` and every project module it imports, transitively, sorted."""
    seen, pending = {name}, [name]
    while pending:
        for module in _direct_imports(pending.pop()):
            if module not in seen:
                seen.add(module)
                pending.append(module)
    return tuple(sorted(seen))


def code_version(module: str, read: Reader = Path.read_bytes) -> str:
    """Digest of the source of `module` and of every project module it imports."""
    digest = hashlib.sha256()
    for name in project_modules(module):
        digest.update(name.encode() + b"\0")
        digest.update(read(module_path(name)))
    return digest.hexdigest()[:12]


def asset_module(assets_def) -> str:
    """The module that defines an asset's function (for factories: the factory's module)."""
    return assets_def.op.compute_fn.decorated_fn.__module__


def with_code_versions(assets: list) -> list:
    """`assets` with each one's code version: that of the module defining its function."""
    from dagster import map_asset_specs

    versioned = []
    for assets_def in assets:
        version = code_version(asset_module(assets_def))
        versioned += map_asset_specs(
            lambda spec, version=version: spec.replace_attributes(code_version=version),
            [assets_def])
    return versioned
