"""Code versions: a digest of the engine modules each asset runs, so the UI marks staleness."""

from __future__ import annotations

import hashlib
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"


def code_version(*modules: str) -> str:
    """Digest of the named `engine` modules or packages (`core.loop`, `reference`)."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        path = ENGINE / module.replace(".", "/")
        files = sorted(path.glob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        for file in files:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


SIMULATION = ("core.book", "core.context", "core.execution", "core.ledger", "core.loop",
              "data.market", "results.tables", "core.strategy", "results.trades",
              "results.metrics", "results.derive")
