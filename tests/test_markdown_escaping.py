"""Hostile names (HTML, newlines, pipes, backticks) render as plain text in every Markdown
output: the gap report and the metadata tables the UI shows."""

from __future__ import annotations

from html.parser import HTMLParser

import polars as pl
import pytest
from markdown_it import MarkdownIt

from assets.io_manager import markdown_table
from engine import BacktestConfig, run_backtest
from engine.gap.analyze import Side, analyze
from engine.gap.report import render_markdown
from engine.results.markdown import escape
from tests.builders import random_universe, top_k_weights

HOSTILE = ["<img src=x onerror=alert(1)>", "two\nlines", "pipe|name", "tick`s`", "**bold** [x](y)"]
SHOWN = {name: name.replace("\n", "\u240a") for name in HOSTILE}  # a newline is shown, not kept


class Page(HTMLParser):
    """The elements of rendered HTML, every table as rows of cell texts, and all the text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def rendered(markdown: str) -> Page:
    """Markdown rendered by a permissive renderer (raw HTML allowed, GFM tables)."""
    return Page(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))


def assert_inert(page: Page) -> None:
    assert not {"img", "a", "code", "b", "em"} & set(page.tags), page.tags
    for table in page.tables:
        assert {len(row) for row in table} == {len(table[0])}, table


@pytest.fixture(scope="module")
def hostile_gap():
    prices, _, _ = random_universe(len(HOSTILE), 60, seed=3)
    names = dict(zip(sorted(prices["asset"].unique()), HOSTILE, strict=True))
    prices = prices.with_columns(pl.col("asset").replace_strict(names)).sort("timestamp", "asset")
    weights = top_k_weights(len(HOSTILE), 60, k=3, every=5, seed=3).with_columns(
        pl.col("asset").replace_strict(names)).sort("timestamp", "asset")
    a = run_backtest(prices, weights, BacktestConfig())
    b = run_backtest(prices, weights, BacktestConfig(fees=0.003))
    return analyze(Side(a.fills, a.equity, name="A|<b>x</b>"),
                   Side(b.fills, b.equity, name="B\n`mine`"), prices, weights)


def test_gap_report_with_hostile_names_keeps_its_tables_and_shows_names_as_text(hostile_gap):
    page = rendered(render_markdown(hostile_gap))
    assert_inert(page)
    summary = hostile_gap.summary
    fault_table, divergence_table, cause_table, *fill_tables = page.tables
    assert len(fault_table) == 1 + len(summary["faults"])
    assert len(cause_table) == 1 + len(summary["attribution"])
    assert len(fill_tables) == len(summary["causes"])
    for table, count in zip(fill_tables, summary["causes"].values(), strict=True):
        assert len(table) == 1 + min(count, 8)
    assets = {row[1] for table in (divergence_table, *fill_tables) for row in table[1:]}
    assert assets and assets <= set(SHOWN.values())
    assert len(assets) >= 3
    text = "".join(page.text)
    assert "Trade gap: B\u240a`mine` against A|<b>x</b>" in text
    assert f"on {SHOWN.get(summary['first_divergence']['asset'])}" in text


def test_metadata_table_with_hostile_names_keeps_one_row_per_row():
    frame = pl.DataFrame({"asset": HOSTILE, "weight | share": [0.1] * len(HOSTILE)})
    page = rendered(markdown_table(frame, rows=len(HOSTILE)))
    assert_inert(page)
    (table,) = page.tables
    assert table == [["asset", "weight | share"], *([SHOWN[n], "0.1"] for n in HOSTILE)]


@pytest.mark.parametrize("name", HOSTILE)
def test_escaped_text_renders_as_exactly_its_characters(name):
    page = rendered(f"{escape(name)}\n\n| a | b |\n|---|---|\n| {escape(name)} | x |")
    assert_inert(page)
    assert "strong" not in page.tags
    assert page.tables == [[["a", "b"], [SHOWN[name], "x"]]]
    assert "".join(page.text).startswith(SHOWN[name])
