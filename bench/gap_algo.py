"""The gap analysis on the algorithm-API engine of tests/algo_engine.py: every case (each
wiring fault from the start and from mid-run, and pairs) × market, with and without the
weights → verdict, causes with their onset bar, and whether that is right
(tests/test_gap_algo.py's judge); then the score, right x of n.

    PYTHONPATH=$PWD .venv/bin/python bench/gap_algo.py [--only TEXT] [--weights with|without]
"""

from __future__ import annotations

import argparse

from engine.gap.fork import cpu_time
from tests.test_gap_algo import (
    CASES,
    FAILING,
    MARKETS,
    analyzed,
    first_changed,
    planted,
    problems,
    stamps,
)


def row(market_name: str, case: str, with_weights: bool) -> tuple[bool, str]:
    market = MARKETS[market_name]
    faults = planted(market, CASES[case])
    started = cpu_time()
    analysis = analyzed(market, faults, with_weights)
    cpu = cpu_time() - started
    bar_of = {t: i for i, t in enumerate(stamps(market))}
    causes = ", ".join(f"{f['cause']} @{bar_of[f['onset']]}" for f in analysis.summary["faults"])
    plants = ", ".join(f"{f.name} @{f.since} (changes @{first_changed(market, faults, f.name)})"
                       for f in faults.faults)
    wrong = problems(market, faults, analysis)
    return not wrong, (f"| {market_name} | {case} | {'with' if with_weights else 'without'} | "
                       f"{plants} | {analysis.summary['verdict']} | {causes or '–'} | "
                       f"{'right' if not wrong else 'WRONG: ' + '; '.join(wrong)} | {cpu:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--weights", choices=("both", "with", "without"), default="both")
    args = parser.parse_args()
    sides = {"both": (True, False), "with": (True,), "without": (False,)}[args.weights]
    print("| market | case | weights | planted @switch (first change) | verdict | "
          "causes @onset bar | judged | CPU s |")
    print("|---|---|---|---|---|---|---|---:|")
    right = {True: [0, 0], False: [0, 0]}
    wrong = []
    for with_weights in sides:
        for market_name in MARKETS:
            for case in CASES:
                if args.only not in case:
                    continue
                ok, line = row(market_name, case, with_weights)
                right[with_weights][0] += ok
                right[with_weights][1] += 1
                print(line, flush=True)
                if not ok:
                    wrong.append((market_name, case, with_weights, line))
    for with_weights in sides:
        good, n = right[with_weights]
        print(f"{'with' if with_weights else 'without'} the weights: right {good} of {n}")
    print("\nWrong (the tests leave out the rows of FAILING; a row not in it is new):")
    for market_name, case, with_weights, line in wrong:
        known = (market_name, case, with_weights) in FAILING
        print(f"{'' if known else 'NEW '}{line}")


if __name__ == "__main__":
    main()
