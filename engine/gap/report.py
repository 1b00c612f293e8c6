"""What a researcher reads first: the verdict and what went wrong, then the evidence.

`render_markdown` opens with one sentence naming the root causes in plain words, where
they first appear and how much of the equity gap they explain; `render_png` draws both
equity curves and the cumulative gap by cause.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from engine.gap.analyze import GapAnalysis

WHAT_WENT_WRONG = {
    "duplicate_fill": "applied fills twice",
    "accumulation": "traded whole targets instead of deltas, so positions accumulated",
    "stale_position": "sized orders from stale positions (state read before fills applied)",
    "timing": "filled orders at another bar",
    "fill_price": "filled at another price (price basis or slippage)",
    "fee": "charged other fees",
    "rounding": "rounded share quantities differently",
    "sizing_basis": "valued the book on another basis (price, time, or fees in or out of cash)",
    "cash_limit": "shrank or rejected orders for cash where the other did not",
    "sequencing": "executed a bar's orders in another sequence",
    "missing_fill": "is missing fills",
    "extra_fill": "has fills the other lacks",
    "unexplained": "differs in ways no single semantic change explains",
}


def _money(value: float) -> str:
    return f"{'-' if value < 0 else '+'}{abs(value):,.2f}"


def headline(summary: dict[str, Any]) -> str:
    """The first sentence: what went wrong, where it starts, how much it explains."""
    a, b = summary["a"] or "A", summary["b"] or "B"
    if summary["verdict"] == "identical":
        return f"{b} and {a} are identical: every fill matches within tolerance."
    gap = summary["final_equity"]["gap"]
    material = [c for c, v in sorted(summary["attribution"].items(), key=lambda kv: -abs(kv[1]))
                if c not in ("unexplained", "propagated") and abs(v) > 0.005 * abs(gap)]
    roots = list(dict.fromkeys([*(c for c in summary["root_causes"] if c != "propagated"),
                                *material]))
    explained = sum(v for c, v in summary["attribution"].items() if c != "unexplained")
    share = explained / gap if gap else 1.0
    first = summary["first_divergence"]
    what = "; and ".join(WHAT_WENT_WRONG[c] for c in roots) or "differs"
    return (f"{b} {what} — first at {first['timestamp']} on {first['asset']} "
            f"({first['cause']}); the root causes explain {share:.1%} of the "
            f"{_money(gap)} final-equity gap ({b} against {a}).")


def render_markdown(analysis: GapAnalysis, context_rows: int = 8) -> str:
    """The gap report as markdown."""
    s = analysis.summary
    lines = [f"# Trade gap: {s['b'] or 'B'} against {s['a'] or 'A'}", "",
             f"**{s['verdict'].capitalize()}.** {headline(s)}", ""]
    fe = s["final_equity"]
    lines += [f"Final equity: A {fe['a']:,.2f}, B {fe['b']:,.2f}, gap {_money(fe['gap'])}. "
              f"Fills: A {s['fills']['a']}, B {s['fills']['b']}; "
              f"{s['fills']['divergent_keys']} (timestamp, asset) keys differ.", ""]
    if s["first_divergence"]:
        first = s["first_divergence"]
        context = analysis.gap_fills.filter(
            (pl.col("timestamp") == first["timestamp"]) & pl.col("divergent"))
        lines += ["## First divergence", "",
                  f"At {first['timestamp']} on {first['asset']} ({first['cause']}): "
                  f"A {_fill(first, 'a')}; B {_fill(first, 'b')}. Every divergent fill of "
                  "that bar:", "", _table(context.head(context_rows)), ""]
    if s["attribution"]:
        lines += ["## Equity gap by cause", "", "| cause | amount | share of gap |",
                  "|---|---:|---:|"]
        for cause, amount in sorted(s["attribution"].items(), key=lambda kv: -abs(kv[1])):
            share = amount / fe["gap"] if fe["gap"] else 0.0
            lines.append(f"| {cause} | {_money(amount)} | {share:.2%} |")
        lines.append("")
    if s["causes"]:
        lines += ["## Divergent fills by cause", ""]
        for cause, count in s["causes"].items():
            roots = s["root_causes"].get(cause, 0)
            rows = analysis.gap_fills.filter(pl.col("divergent") & (pl.col("cause") == cause))
            lines += [f"### {cause}: {count} fills ({roots} root)", "",
                      _table(rows.head(context_rows)), ""]
    if s.get("semantics"):
        diff = {k: (v, s["semantics"]["b"][k]) for k, v in s["semantics"]["a"].items()
                if v != s["semantics"]["b"][k]}
        if diff:
            lines += ["## Semantics that differ (fitted from the fills)", "",
                      "| setting | A | B |", "|---|---|---|"]
            lines += [f"| {k} | {a} | {b} |" for k, (a, b) in diff.items()]
            lines.append("")
    return "\n".join(lines)


def _fill(first: dict[str, Any], side: str) -> str:
    quantity = first[f"quantity_{side}"]
    if quantity is None:
        return "no fill"
    return (f"{quantity:,.6g} shares at {first[f'price_{side}']:,.6g}, "
            f"fee {first[f'fee_{side}']:,.4g}")


def _table(frame: pl.DataFrame) -> str:
    columns = ["timestamp", "asset", "quantity_a", "quantity_b", "price_a", "price_b",
               "fee_a", "fee_b", "cause", "root"]
    frame = frame.select(columns)
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, *body])


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_png(analysis: GapAnalysis) -> bytes:
    """Both equity curves (top) and the cumulative equity gap by cause (bottom)."""
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
                  f"({summary['verdict']})")
    for column in (c for c in curves.columns if c.startswith("gap_")):
        bottom.plot(times, curves[column].to_numpy(), label=column[4:], linewidth=1.2)
    bottom.axhline(0, color="grey", linewidth=0.8)
    bottom.set_ylabel("cumulative gap (B − A)")
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
