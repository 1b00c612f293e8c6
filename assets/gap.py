"""The compare stage: trade-gap analysis between backtests (`engine.gap`).

`build_trade_gap(comparisons)` makes the asset from the pairs to compare and the causes
each may show: the engine against the reference, and each installed peer against the
engine under the peer's profile (`assets.peers`). The accepted baseline of each compared
backtest is compared too, when there is one.
"""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, asset

from assets.groups import COMPARE
from assets.io_manager import image_markdown
from assets.resources import ArtifactStore, ExecutionSettings
from assets.types import GapTables
from engine.gap.analyze import Side, analyze
from engine.gap.report import headline, render_markdown, render_png
from engine.gap.vocabulary import CAUSES
from engine.reference import rules_for
from engine.results.markdown import escape

# (a, b, causes allowed): engine and reference must be identical; your own engine's log
# may differ in any way the analysis explains.
ENGINE_AND_REFERENCE = [("backtest_engine", "backtest_reference", frozenset())]
EXTERNAL = "backtest_external"
EXTERNAL_PAIR = [("backtest_reference", EXTERNAL, frozenset(CAUSES) - {"unexplained"})]
SUMMARY_SCHEMA = {"pair": pl.String, "verdict": pl.String, "first_cause": pl.String,
                  "divergent_keys": pl.Int64, "equity_gap": pl.Float64,
                  "unexplained": pl.Float64, "root_causes": pl.String, "expected": pl.Boolean,
                  "headline": pl.String}


def summary_row(pair: str, summary: dict, allowed: frozenset) -> dict:
    roots = summary["root_causes"]
    unexpected = (set(roots) - allowed - {"propagated"}) or summary["verdict"] == "unexplained"
    return {
        "pair": pair, "verdict": summary["verdict"],
        "first_cause": (summary["first_divergence"] or {}).get("cause"),
        "divergent_keys": summary["fills"]["divergent_keys"],
        "equity_gap": float(summary["final_equity"]["gap"]),
        "unexplained": float(summary["attribution"].get("unexplained", 0.0)),
        "root_causes": ", ".join(f"{c}: {n}" for c, n in roots.items()) or "none",
        "expected": not unexpected,
        "headline": headline(summary),
    }


def build_trade_gap(comparisons: list[tuple[str, str, frozenset]]):
    """The `trade_gap` asset over `comparisons` (pairs of backtest assets)."""
    backtest_names = sorted({name for a, b, _ in comparisons for name in (a, b)})
    own = {name for name, _, _ in ENGINE_AND_REFERENCE} | {
        name for _, name, _ in ENGINE_AND_REFERENCE}

    @asset(name="trade_gap", group_name=COMPARE, dagster_type=GapTables,
           ins={name: AssetIn(name) for name in backtest_names})
    def trade_gap(
        context: AssetExecutionContext, market_data: pl.DataFrame,
        target_weights: pl.DataFrame, settings: ExecutionSettings, store: ArtifactStore,
        **backtests: dict[str, pl.DataFrame],
    ) -> dict[str, pl.DataFrame]:
        """Every divergence between the compared backtests, its root cause and its cost."""
        config = settings.config()
        rules = rules_for(config)
        pairs = list(comparisons)
        for name in backtest_names:
            if store.load_baseline(name) is not None:
                pairs.append((f"{name}@baseline", name, frozenset()))

        def side(name: str) -> Side:
            base = name.removesuffix("@baseline")
            tables = (store.load_baseline(base)[0] if name.endswith("@baseline")
                      else backtests[name])
            fills = tables["fills"].select("timestamp", "asset", "quantity", "price", "fee")
            known = rules if base in own else None  # peers: read from their fills
            return Side(fills, tables["equity"], known, name)

        rows, tables, metadata = [], {}, {}
        for a, b, allowed in pairs:
            if b == EXTERNAL and backtests[b]["fills"].is_empty():
                context.log.info(f"{b} vs {a}: skipped, no external fill log configured")
                continue
            analysis = analyze(side(a), side(b), market_data, target_weights,
                               config.initial_cash)
            pair = f"{b} vs {a}"
            slug = pair.replace(" ", "_").replace("@", "_")
            rows.append(summary_row(pair, analysis.summary, allowed))
            tables[f"fills_{slug}"] = analysis.gap_fills
            png = render_png(analysis)
            path = store.write_file(f"trade_gap_reports/{slug}.png", png)
            report = render_markdown(analysis)
            store.write_file(f"trade_gap_reports/{slug}.md", report.encode())
            metadata[f"report: {pair}"] = MetadataValue.md(report)
            metadata[f"plot: {pair}"] = image_markdown(png, f"equity gap by cause: {pair}")
            metadata[f"plot file: {pair}"] = MetadataValue.path(str(path))
            context.log.info(f"{pair}: {analysis.summary['verdict']}: "
                             f"{headline(analysis.summary)}")
        summary = pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
        context.add_output_metadata({"verdicts": MetadataValue.md(
            "\n".join(f"- **{escape(r['pair'])}**: {r['verdict']}" for r in rows)), **metadata})
        return {"summary": summary, **tables}

    return trade_gap
