"""The report's first sentence and plot: root causes only, largest first, labels apart."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.gap.events import Fault, _merged
from engine.gap.report import HEADLINE_CAUSES, headline, onset_labels

DAY0 = datetime(2020, 1, 1)
STAMPS = [DAY0 + timedelta(days=i) for i in range(400)]


def summary(faults: list[Fault], gap: float) -> dict:
    return {"a": "A", "b": "B", "verdict": "explained",
            "faults": [f.to_dict(gap) for f in faults],
            "attribution": {f.cause: f.amount for f in faults},
            "final_equity": {"a": 0.0, "b": gap, "gap": gap}, "first_divergence": None}


def fault(cause: str, words: str, onset: int, end: int | None, amount: float) -> Fault:
    return Fault("B", cause, words, onset, end, [onset], amount, STAMPS)


def test_spans_of_one_fault_are_one_fault_and_unexplained_stretches_one_item():
    merged = _merged([
        fault("stale_position", "positions read one batch late", 10, 20, 5.0),
        fault("stale_position", "positions read one batch late", 40, None, 7.0),
        fault("unexplained", "fills no rule reproduces, first on X", 12, 12, 1.0),
        fault("unexplained", "fills no rule reproduces, first on Y", 50, 51, 1.0),
    ])
    assert len(merged) == 2
    stale = next(f for f in merged if f.cause == "stale_position")
    assert stale.spans == [(10, 20), (40, None)] and stale.end is None
    assert stale.amount == 12.0
    lost = next(f for f in merged if f.cause == "unexplained")
    assert lost.spans == [(12, 12), (50, 51)] and "2 stretches" in lost.words


def test_the_headline_names_at_most_three_causes_largest_first():
    faults = [fault("fee", "fees 0.2% instead of 0.1%", 3, None, 10.0),
              fault("accumulation", "position read as zero", 30, None, 600.0),
              fault("duplicate_fill", "fills of 2020-03-01 booked twice", 60, 60, 300.0),
              fault("timing", "filled at the next bar", 90, None, 80.0),
              fault("rounding", "lots of 100", 5, None, 10.0)]
    text = headline(summary(faults, 1000.0))
    clauses = text.split(" — ")[0].split("; ")
    assert len(clauses) == HEADLINE_CAUSES + 1 and clauses[-1].startswith("2 smaller")
    assert clauses[0].startswith("B traded whole targets") and "60.0% of the gap" in clauses[0]
    assert "applied fills twice" in clauses[1] and "at 2020-03-01 only" in clauses[1]
    assert "filled at another time" in clauses[2]


def test_onset_labels_never_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(10, 3), dpi=100)
    axes.plot(STAMPS, range(len(STAMPS)))
    faults = [{"onset": STAMPS[i], "cause": cause} for i, cause in
              [(100, "duplicate_fill"), (100, "stale_position"), (101, "accumulation"),
               (103, "cash_limit"), (250, "timing"), (252, "sizing_basis")]]
    boxes = onset_labels(axes, faults)
    plt.close(fig)
    assert len(boxes) == len(faults)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
