"""What a researcher reads first: each fault, where it starts and ends, and its share.

`headline` is the report's first sentence; `render_markdown` adds the faults, the first
divergence, the gap by cause and the divergent fills; `render_png` draws both equity
curves with every fault's onset marked, and the cumulative gap by cause.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from engine.gap.analyze import GapAnalysis
from engine.gap.vocabulary import WHAT_WENT_WRONG, day
from engine.results.markdown import escape

HEADLINE_CAUSES = 3


def _money(value: float) -> str:
    return f"{'-' if value < 0 else '+'}{abs(value):,.2f}"


def _when(spans: list[dict[str, Any]]) -> str:
    """"from X on", "at X only", "from X to Y"; a fault that came back says how often."""
    first = spans[0]
    if len(spans) > 1:
        return f"from {day(first['onset'])} ({len(spans)} spans)"
    if first["end"] is None:
        return f"from {day(first['onset'])} on"
    if first["end"] == first["onset"]:
        return f"at {day(first['onset'])} only"
    return f"from {day(first['onset'])} to {day(first['end'])}"


def headline(summary: dict[str, Any]) -> str:
    """The first sentence: the root causes, largest share first, each with its onset.

    One clause per fault (its spans are one fault), at most `HEADLINE_CAUSES` of them;
    the rest are in the report's tables.
    """
    a, b = summary["a"] or "A", summary["b"] or "B"
    if summary["verdict"] == "identical":
        return f"{b} and {a} are identical: every fill matches within tolerance."
    gap = summary["final_equity"]["gap"]
    faults = sorted(summary["faults"], key=lambda f: -abs(f["share"]))
    parts = []
    for fault in faults[:HEADLINE_CAUSES]:
        who = b if fault["side"] == "B" else a
        parts.append(f"{who} {WHAT_WENT_WRONG[fault['cause']]} ({fault['what']}) "
                     f"{_when(fault.get('spans') or [fault])}, {fault['share']:.1%} of the gap")
    more = len(faults) - len(parts)
    what = "; ".join(parts) + (f"; {more} smaller in the faults table" if more > 0 else "") \
        if parts else f"{b} differs"
    explained = sum(v for c, v in summary["attribution"].items() if c != "unexplained")
    share = explained / gap if gap else 1.0
    return (f"{what} — the faults explain {share:.1%} of the {_money(gap)} "
            f"final-equity gap ({b} against {a}).")


def render_markdown(analysis: GapAnalysis, context_rows: int = 8) -> str:
    """The gap report as markdown."""
    s = analysis.summary
    lines = [f"# Trade gap: {escape(s['b'] or 'B')} against {escape(s['a'] or 'A')}", "",
             f"**{s['verdict'].capitalize()}.** {escape(headline(s))}", ""]
    fe = s["final_equity"]
    lines += [f"Final equity (from each side's fills): A {fe['a']:,.2f}, B {fe['b']:,.2f}, "
              f"gap {_money(fe['gap'])}. Fills: A {s['fills']['a']}, B {s['fills']['b']}; "
              f"{s['fills']['divergent_keys']} (timestamp, asset) keys differ. Decisions: "
              f"{s['decisions']}.", ""]
    if s["faults"]:
        lines += ["## Faults", "", "| side | cause | what | onset | end | bars touched | "
                  "amount | share |", "|---|---|---|---|---|---:|---:|---:|"]
        for f in s["faults"]:
            end = "–" if f["end"] is None else day(f["end"])
            lines.append(f"| {f['side']} | {f['cause']} | {escape(f['what'])} | "
                         f"{day(f['onset'])} | {end} | {f['bars_touched']} | "
                         f"{_money(f['amount'])} | {f['share']:.2%} |")
        lines.append("")
    if s["first_divergence"]:
        first = s["first_divergence"]
        context = analysis.gap_fills.filter(
            (pl.col("timestamp") == first["timestamp"]) & pl.col("divergent"))
        lines += ["## First divergence", "",
                  f"At {first['timestamp']} on {escape(first['asset'])} ({first['cause']}): "
                  f"A {_fill(first, 'a')}; B {_fill(first, 'b')}. Divergent fills of "
                  "that bar:", "", _table(context.head(context_rows)), ""]
    if s["attribution"]:
        lines += ["## Equity gap by cause", "", "Shapley values of counterfactual replays: "
                  "they add up to the gap whatever order the causes are listed in.", "",
                  "| cause | amount | share of gap |", "|---|---:|---:|"]
        for cause, amount in sorted(s["attribution"].items(), key=lambda kv: -abs(kv[1])):
            share = amount / fe["gap"] if fe["gap"] else 0.0
            lines.append(f"| {cause} | {_money(amount)} | {share:.2%} |")
        lines.append("")
    if s["causes"]:
        lines += ["## Divergent fills by cause", ""]
        for cause, count in s["causes"].items():
            rows = analysis.gap_fills.filter(
                pl.col("divergent") & pl.col("cause").str.split("+").list.contains(cause))
            lines += [f"### {cause}: {count} fills", "", _table(rows.head(context_rows)), ""]
    if s.get("trusted_rules"):
        rules = escape(", ".join(f"{k}={v}" for k, v in s["trusted_rules"].items()))
        lines += ["## Trusted rules (A's)", "", rules, ""]
    return "\n".join(lines)


def _fill(first: dict[str, Any], side: str) -> str:
    quantity = first[f"quantity_{side}"]
    if quantity is None:
        return "no fill"
    return (f"{quantity:,.6g} shares at {first[f'price_{side}']:,.6g}, "
            f"fee {first[f'fee_{side}']:,.4g}")


def _table(frame: pl.DataFrame) -> str:
    columns = ["timestamp", "asset", "quantity_a", "quantity_b", "price_a", "price_b",
               "fee_a", "fee_b", "cause", "side"]
    frame = frame.select(columns)
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, *body])


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(value)


def render_png(analysis: GapAnalysis) -> bytes:
    """Both equity curves with each fault's onset marked (top); cumulative gap by cause."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = analysis.curves
    times = curves["timestamp"].to_numpy()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), dpi=100, sharex=True)
    for column, label in (("equity_a", "A"), ("equity_b", "B")):
        if column in curves.columns:
            top.plot(times, curves[column].to_numpy(), label=label, linewidth=1.2)
    top.set_ylabel("equity")
    top.legend()
    top.grid(alpha=0.3)
    summary = analysis.summary
    top.set_title(f"Trade gap: {summary['b'] or 'B'} against {summary['a'] or 'A'} "
                  f"({summary['verdict']}); red lines: fault onsets")
    for column in (c for c in curves.columns if c.startswith("gap_")):
        bottom.plot(times, curves[column].to_numpy(), label=column[4:], linewidth=1.2)
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set_ylabel("cumulative gap (B − A)")
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    top.set_xlim(*top.get_xlim())  # the labels are placed for these limits
    onset_labels(top, analysis.summary["faults"])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def onset_labels(axes, faults: list[dict[str, Any]]) -> list:
    """A red line at each fault's onset and its cause written beside it, each label on the
    highest row where it overlaps no other label (returns the labels' extents)."""
    renderer = axes.figure.canvas.get_renderer()
    placed: list = []
    for fault in sorted(faults, key=lambda f: f["onset"]):
        axes.axvline(fault["onset"], color="red", linewidth=0.8, alpha=0.6)
        row = 0
        while True:
            text = axes.annotate(fault["cause"], (fault["onset"], 1.0 - 0.08 * row),
                                 xycoords=("data", "axes fraction"), fontsize=7, va="top",
                                 ha="left", color="red",
                                 bbox={"boxstyle": "square,pad=0.1", "fc": "white",
                                       "ec": "none", "alpha": 0.7})
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            text.remove()
            row += 1
    return placed
