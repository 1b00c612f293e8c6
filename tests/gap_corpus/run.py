"""Run the analyzer on a pair and hold what it found against the manifest.

`outcome(name, mode)` analyzes one pair with the weights ("weights") or without
("inferred"); `problems` lists every manifest field the outcome gets wrong (empty: the
pair is right); `table` renders the corpus's results as markdown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from engine.gap.analyze import Side, analyze
from tests.gap_corpus import build, markets
from tests.gap_corpus.manifest import BY_NAME, PAIRS, WEIGHTS, Pair

EXPLAINED_SHARE = 0.99


@dataclass(frozen=True)
class Outcome:
    name: str
    mode: str
    verdict: str
    first_cause: frozenset[str]
    first_key: tuple | None
    onset: datetime | None  # earliest onset among the faults of an expected first cause
    causes: frozenset[str]
    faults: list[dict[str, Any]]
    attribution: dict[str, float]
    gap: float
    seconds: float
    expected_onset: datetime = None
    expected_end: datetime | None = None
    problems: list[str] = field(default_factory=list)


@cache
def outcome(name: str, mode: str) -> Outcome:
    pair = BY_NAME[name]
    a, b = build.fills_a(pair), build.fills_b(name)
    prices = markets.prices(pair.market)
    weights = markets.weights(pair.market) if mode == WEIGHTS else None
    started = time.perf_counter()
    summary = analyze(Side(a, rules=build.rules_a(pair), name="A"), Side(b, name="B"),
                      prices, weights, markets.INITIAL_CASH).summary
    seconds = time.perf_counter() - started
    first = summary["first_divergence"] or {}
    causes_first = frozenset(first.get("cause", "").split("+")) - {""}
    faults = summary["faults"]
    onsets = [f["onset"] for f in faults if f["cause"] in pair.first_cause]
    found = Outcome(
        name, mode, summary["verdict"], causes_first,
        (first.get("timestamp"), first.get("asset")) if first else None,
        min(onsets) if onsets else None, frozenset(f["cause"] for f in faults), faults,
        summary["attribution"], summary["final_equity"]["gap"], seconds,
        build.onset(name), build.end(name) if pair.stops else None)
    found.problems.extend(problems(pair, found))
    return found


def problems(pair: Pair, found: Outcome) -> list[str]:
    """Every manifest field the outcome gets wrong, in words."""
    out = []
    if found.verdict != pair.verdict:
        out.append(f"verdict {found.verdict}, expected {pair.verdict}")
    if found.first_cause != pair.first_cause:
        out.append(f"first cause {_words(found.first_cause)} at {_key(found.first_key)}, "
                   f"expected {_words(pair.first_cause)}")
    if found.onset != found.expected_onset:
        out.append(f"onset {_day(found.onset)}, expected {_day(found.expected_onset)}")
    if found.causes != pair.causes:
        missing, extra = pair.causes - found.causes, found.causes - pair.causes
        out.append("fault causes " + _words(found.causes)
                   + (f", missing {_words(missing)}" if missing else "")
                   + (f", unexpected {_words(extra)}" if extra else ""))
    if pair.stops:
        ends = [f["end"] for f in found.faults if f["cause"] in pair.first_cause]
        if not ends or None in ends or max(ends) != found.expected_end:
            out.append(f"ends {[_day(e) for e in ends]}, expected {_day(found.expected_end)}")
    if pair.verdict == "explained":
        total = sum(found.attribution.values())
        if abs(total - found.gap) > 1e-6 * max(1.0, abs(found.gap)):
            out.append(f"attribution sums to {total:.2f}, gap {found.gap:.2f}")
        left = abs(found.attribution.get("unexplained", 0.0))
        if left > (1 - EXPLAINED_SHARE) * abs(found.gap):
            out.append(f"unexplained {left:.2f} of a {found.gap:.2f} gap")
    return out


def _words(causes: frozenset[str]) -> str:
    return "+".join(sorted(causes)) or "none"


def _day(t: datetime | None) -> str:
    return "none" if t is None else t.strftime("%Y-%m-%d")


def _key(key: tuple | None) -> str:
    return "none" if key is None else f"{_day(key[0])} {key[1]}"


def fault_lines(found: Outcome) -> list[str]:
    return [f"{f['side']} {f['cause']} ({f['what']}) {_day(f['onset'])}→{_day(f['end'])}, "
            f"{f['bars_touched']} bars, share {f['share']:.1%}" for f in found.faults]


def table(outcomes: list[Outcome]) -> str:
    """The corpus's results, one row per pair and mode, with the count of right pairs."""
    right = {o.name for o in outcomes} - {o.name for o in outcomes if o.problems}
    names = list(dict.fromkeys(o.name for o in outcomes))
    lines = [
        "# Trade-gap corpus",
        "",
        f"**{len(right)} of {len(names)} pairs right** ({sum(not o.problems for o in outcomes)}"
        f" of {len(outcomes)} analyses; a pair is right when every analysis of it is).",
        "Regenerate with `python -m tests.gap_corpus`.",
        "",
        "| pair | source | fault | form | decisions | first cause (expected / found) "
        "| onset (expected / found) | fault causes (expected / found) "
        "| verdict (expected / found) | seconds | right |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        pair = BY_NAME[o.name]
        lines.append(
            f"| {o.name} | {pair.source} | {pair.fault} | {pair.form} | {o.mode} "
            f"| {_words(pair.first_cause)} / {_words(o.first_cause)} "
            f"| {_day(o.expected_onset)} / {_day(o.onset)} "
            f"| {_words(pair.causes)} / {_words(o.causes)} "
            f"| {pair.verdict} / {o.verdict} | {o.seconds:.1f} "
            f"| {'yes' if not o.problems else 'no'} |")
    wrong = [o for o in outcomes if o.problems]
    if wrong:
        lines += ["", "## What is wrong", ""]
        for o in wrong:
            lines.append(f"- **{o.name}** ({o.mode}): " + "; ".join(o.problems))
            lines += [f"  - {line}" for line in fault_lines(o)]
    return "\n".join(lines) + "\n"


def all_outcomes(pairs: list[Pair] | None = None) -> list[Outcome]:
    return [outcome(p.name, mode) for p in (pairs or PAIRS) for mode in p.modes]
