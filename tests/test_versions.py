"""Code versions cover every project module an asset runs, found from the import graph."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assets.versions import asset_module, code_version, module_path, project_modules
from pipelines.definitions import ASSETS, defs

ASSET_MODULES = sorted({asset_module(assets_def) for assets_def in ASSETS})


def test_every_asset_has_the_code_version_of_its_module():
    graph = defs.resolve_asset_graph()
    for assets_def in ASSETS:
        for key in assets_def.keys:
            version = graph.get(key).code_version
            assert version == code_version(asset_module(assets_def)), key.to_user_string()


@pytest.mark.parametrize("module", ASSET_MODULES)
def test_changing_any_imported_module_changes_the_version(module):
    base = code_version(module)
    for name in project_modules(module):
        changed = module_path(name)
        assert code_version(
            module, read=lambda path, changed=changed: path.read_bytes() + (
                b"\n# edited" if path == changed else b"")) != base, name


@pytest.mark.parametrize("module", ASSET_MODULES)
def test_the_graph_holds_every_project_module_python_imports(module):
    probe = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
             "print(json.dumps(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('engine', 'schemas', 'assets', 'pipelines'))))")
    done = subprocess.run([sys.executable, "-c", probe, module], capture_output=True,
                          text=True, check=True)
    imported = set(json.loads(done.stdout.splitlines()[-1]))
    assert imported <= set(project_modules(module))


def test_the_backtest_version_covers_the_settings_profiles_loading_and_the_loop():
    covered = set(project_modules("assets.backtests"))
    assert {"engine.core.config", "engine.core.profiles", "engine.data.loading",
            "engine.backtest", "engine.core.loop", "engine.reference",
            "assets.resources"} <= covered


def test_relative_and_function_level_imports_are_followed(tmp_path, monkeypatch):
    import assets.versions as versions

    root = tmp_path
    (root / "engine" / "sub").mkdir(parents=True)
    (root / "engine" / "__init__.py").write_text("")
    (root / "engine" / "sub" / "__init__.py").write_text("from . import leaf\n")
    (root / "engine" / "sub" / "leaf.py").write_text(
        "def later():\n    from ..late import thing\n")
    (root / "engine" / "late.py").write_text("thing = 1\n")
    (root / "engine" / "top.py").write_text("import engine.sub\nimport numpy\n")
    monkeypatch.setattr(versions, "ROOT", root)
    caches = (versions.project_modules, versions._direct_imports)
    for cache in caches:
        cache.cache_clear()
    try:
        assert versions.project_modules("engine.top") == (
            "engine", "engine.late", "engine.sub", "engine.sub.leaf", "engine.top")
    finally:
        for cache in caches:
            cache.cache_clear()
