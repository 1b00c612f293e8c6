"""The gap analysis on the queue-driven engine of tests/foreign_engine.py: a table of each
wiring fault (and combinations) × onset × market → verdict, causes with their onset bar,
and whether that is right (tests/test_gap_foreign.py's judge).

    PYTHONPATH=$PWD .venv/bin/python bench/gap_foreign.py [--without-weights]
"""

from __future__ import annotations

import argparse

from engine.gap.fork import cpu_time
from tests.test_gap_foreign import (
    CAUSES_OF,
    COMBINATIONS,
    SPARE,
    TIGHT,
    analyzed,
    combined,
    first_changed,
    prices,
    problems,
    single,
)

# Combinations the tests leave out because the analysis still gets them wrong.
HARD = {
    "a stop beside a double booking as fills execute": (("stop_loss", 0), ("fill_twice", "mid")),
    "positions from the order, then fees charged twice": (
        ("positions_from_order", 0), ("fees_twice", "mid")),
    "a double booking, then a stale cash check, then a per-share fee": (
        ("fill_twice", "early"), ("day_copy", "mid"), ("per_share_fee", "late")),
}


def row(market, name: str, faults, with_weights: bool) -> str:
    started = cpu_time()
    analysis = analyzed(market, faults, with_weights)
    cpu = cpu_time() - started
    stamps = prices(market)["timestamp"].unique().sort().to_list()
    bar_of = {t: i for i, t in enumerate(stamps)}
    causes = ", ".join(f"{f['cause']} @{bar_of[f['onset']]}" for f in analysis.summary["faults"])
    planted = ", ".join(f"{f.name} @{f.since} (changes @{first_changed(market, faults, f.name)})"
                        for f in faults.faults)
    wrong = problems(market, faults, analysis)
    return (f"| {name} | {planted} | {analysis.summary['verdict']} | {causes or '–'} | "
            f"{'right' if not wrong else 'WRONG: ' + '; '.join(wrong)} | {cpu:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without-weights", action="store_true")
    with_weights = not parser.parse_args().without_weights
    print("| market | fault (switched on @bar) | verdict | causes @onset bar | judged | "
          "CPU s |")
    print("|---|---|---|---|---|---:|")
    for market, words in ((TIGHT, "tight"), (SPARE, "spare")):
        for name in CAUSES_OF:
            for onset in ("start", "mid-run"):
                print(row(market, words, single(name, onset, market), with_weights),
                      flush=True)
        for name, parts in {**COMBINATIONS, **HARD}.items():
            print(row(market, f"{words}: {name}", combined(market, parts), with_weights),
                  flush=True)


if __name__ == "__main__":
    main()
