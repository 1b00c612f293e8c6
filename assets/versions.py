"""Code versions: a digest of the engine modules each asset runs, so the UI marks staleness."""

from __future__ import annotations

import hashlib
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"


def code_version(*modules: str) -> str:
    """Digest of the named `engine` modules' source (`core.loop`: changes when the code does)."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update((ENGINE / f"{module.replace('.', '/')}.py").read_bytes())
    return digest.hexdigest()[:12]


SIMULATION = ("core.book", "core.context", "core.execution", "core.ledger", "core.loop",
              "data.market", "results.tables", "core.strategy", "results.trades",
              "results.metrics", "results.derive")
