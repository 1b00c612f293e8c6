"""Code versions: a digest of the engine modules each asset runs, so the UI marks staleness."""

from __future__ import annotations

import hashlib
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"


def code_version(*modules: str) -> str:
    """Digest of the named `engine/` modules' source (changes when their code changes)."""
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update((ENGINE / f"{module}.py").read_bytes())
    return digest.hexdigest()[:12]


SIMULATION = ("book", "context", "execution", "ledger", "loop", "market", "results", "strategy",
              "trades", "metrics", "derive")
