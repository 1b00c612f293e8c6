"""The gap analysis judged against a drawn engine's truth.

For a drawn engine (`generator.py`) the analysis is right when
- every cause it names (besides `propagated` and `unexplained`) names a planted bug that
  changed a fill;
- every planted bug in the vocabulary that changed a fill is named by one of its causes,
  with a fault of that cause whose onset lies between the bug's onset and the first bar
  whose fills it changed;
- when every planted bug is in the vocabulary, the verdict is `explained` (or `identical`
  when none left a trace) and at most 1% of the gap is unexplained;
- when a bug outside the vocabulary changed a fill, the verdict is `unexplained`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.demo.generator import INITIAL_CASH, DrawnEngine, Planted
from engine.gap.analyze import GapAnalysis, Side, analyze

UNEXPLAINED_LIMIT = 0.01
NOT_NAMES = {"propagated", "unexplained"}


@dataclass
class Judgement:
    """What the analysis said about one drawn engine and where it was wrong."""

    draw: str
    verdict: str
    named: list[str]
    expected: list[str]
    wrong: list[str] = field(default_factory=list)  # named, but no planted bug's
    missed: list[str] = field(default_factory=list)  # planted bugs not named
    onsets: dict[str, bool] = field(default_factory=dict)  # named bug → onset right
    unexplained_share: float = 0.0
    all_in_vocabulary: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def right(self) -> bool:
        return not self.problems


def analyze_drawn(drawn: DrawnEngine, with_weights: bool = True) -> GapAnalysis:
    """The analysis of the drawn engine (B) against the reference (A)."""
    return analyze(Side(drawn.reference, rules=drawn.rules, name="reference"),
                   Side(drawn.fills, name="drawn engine"), drawn.prices,
                   drawn.weights if with_weights else None, INITIAL_CASH)


def judge(drawn: DrawnEngine, analysis: GapAnalysis) -> Judgement:
    """How the analysis of `drawn` compares with its truth."""
    summary = analysis.summary
    stamps = drawn.prices["timestamp"].unique().sort().to_list()
    bar_of = {t: i for i, t in enumerate(stamps)}
    faults = [f for f in summary["faults"] if f["cause"] not in NOT_NAMES]
    named = sorted({f["cause"] for f in faults})
    traced = [p for p in drawn.planted if p.changed]
    allowed = {c for p in traced for c in p.causes}
    expected = sorted({c for p in traced if p.in_vocabulary for c in p.causes[:1]})
    j = Judgement(drawn.words(), summary["verdict"], named, expected,
                  all_in_vocabulary=all(p.in_vocabulary for p in traced))
    j.wrong = [c for c in named if c not in allowed]
    for cause in j.wrong:
        onsets = sorted(str(f["onset"])[:10] for f in faults if f["cause"] == cause)
        j.problems.append(f"named {cause} (from {onsets[0]}), which no planted bug is")
    for planted in traced:
        if not planted.in_vocabulary:
            continue
        mine = [f for f in faults if f["cause"] in planted.causes and f["side"] == "B"]
        if not mine:
            j.missed.append(str(planted.bug))
            j.problems.append(f"{planted.bug} changed fills from "
                              f"{_day(stamps[planted.first_changed])} but no "
                              f"{'/'.join(planted.causes)} was named")
            continue
        window = (planted.bug.since, planted.first_changed)
        right = any(window[0] <= bar_of[f["onset"]] <= window[1] for f in mine)
        j.onsets[str(planted.bug)] = right
        if not right:
            found = sorted(_day(f["onset"]) for f in mine)
            j.problems.append(f"{planted.bug}: onset {', '.join(found)}, not between "
                              f"{_day(stamps[window[0]])} and {_day(stamps[window[1]])}")
    gap = summary["final_equity"]["gap"]
    unexplained = abs(summary["attribution"].get("unexplained", 0.0))
    j.unexplained_share = unexplained / abs(gap) if gap else 0.0
    _verdict(j, traced)
    return j


def _verdict(j: Judgement, traced: list[Planted]) -> None:
    if not traced:
        if j.verdict != "identical":
            j.problems.append(f"no bug left a trace, verdict {j.verdict}")
        return
    if j.all_in_vocabulary:
        if j.verdict != "explained":
            j.problems.append(f"verdict {j.verdict}, every planted bug is in the vocabulary")
        if j.unexplained_share >= UNEXPLAINED_LIMIT:
            j.problems.append(f"{j.unexplained_share:.1%} of the gap unexplained")
    elif j.verdict != "unexplained":
        outside = [str(p.bug) for p in traced if not p.in_vocabulary]
        j.problems.append(f"verdict {j.verdict} with {', '.join(outside)} outside the "
                          "vocabulary")


def _day(timestamp) -> str:
    return str(timestamp)[:10]


@dataclass
class Scorecard:
    """Figures over many judged draws: precision and recall of named causes, onset
    accuracy, the unexplained share where every bug is in the vocabulary, and the
    negative controls."""

    judgements: list[Judgement] = field(default_factory=list)
    planted: list[tuple[Planted, bool, bool | None]] = field(default_factory=list)

    def add(self, drawn: DrawnEngine, judgement: Judgement) -> None:
        self.judgements.append(judgement)
        for planted in drawn.planted:
            if planted.changed and planted.in_vocabulary:
                named = str(planted.bug) not in judgement.missed
                self.planted.append((planted, named, judgement.onsets.get(str(planted.bug))))

    def figures(self) -> dict[str, float | int]:
        js = self.judgements
        named = sum(len(j.named) for j in js)
        wrong = sum(len(j.wrong) for j in js)
        recalled = [named for _, named, _ in self.planted]
        onsets = [right for _, named, right in self.planted if named]
        vocabulary = [j for j in js if j.all_in_vocabulary and j.expected]
        shares = sorted(j.unexplained_share for j in vocabulary)
        controls = [j for j in js if not j.all_in_vocabulary]
        return {
            "draws": len(js),
            "draws right": sum(j.right for j in js),
            "named causes": named,
            "precision": (named - wrong) / named if named else 1.0,
            "planted bugs with a trace (in the vocabulary)": len(recalled),
            "recall": sum(recalled) / len(recalled) if recalled else 1.0,
            "onset accuracy": sum(onsets) / len(onsets) if onsets else 1.0,
            "draws all in the vocabulary": len(vocabulary),
            "explained (verdict)": sum(j.verdict == "explained" for j in vocabulary),
            "unexplained share < 1%": sum(s < UNEXPLAINED_LIMIT for s in shares),
            "unexplained share, median": shares[len(shares) // 2] if shares else 0.0,
            "unexplained share, mean": sum(shares) / len(shares) if shares else 0.0,
            "draws with a bug outside the vocabulary": len(controls),
            "of them verdict unexplained": sum(j.verdict == "unexplained" for j in controls),
        }

    def by_bug(self) -> dict[str, tuple[int, int, int]]:
        """Per bug name: (planted with a trace, named, named with the right onset)."""
        out: dict[str, list[int]] = {}
        for planted, named, right in self.planted:
            row = out.setdefault(planted.bug.name, [0, 0, 0])
            row[0] += 1
            row[1] += named
            row[2] += bool(right)
        return {name: tuple(row) for name, row in sorted(out.items())}
