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


SIMULATION = ("core.book", "core.config", "core.context", "core.kernels.__init__",
              "core.kernels.execution", "core.kernels.hooks", "core.kernels.loop",
              "core.kernels.sizing", "core.ledger", "core.loop", "core.profiles",
              "core.records", "core.strategy", "data.market", "results.derive",
              "results.holdings", "results.metrics", "results.tables", "results.trades")
