"""`python -m tests.gap_corpus [PAIR ...]`: analyze the corpus, write `out/gap_corpus.md`."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.gap_corpus.manifest import BY_NAME, PAIRS
from tests.gap_corpus.run import all_outcomes, table

OUT = Path(__file__).resolve().parents[2] / "out" / "gap_corpus.md"


def main(names: list[str]) -> int:
    pairs = [BY_NAME[n] for n in names] if names else PAIRS
    text = table(all_outcomes(pairs))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text.splitlines()[2])
    print(f"table: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
