"""End to end through the UI server `make ui` starts: `dg dev`, runs launched over GraphQL,
pages rendered by Chromium.

One server (`python -m pipelines.ui`, what `make ui` runs) serves the code location from a
temporary DAGSTER_HOME (`deploy/dagster-local.yaml`: SQLite, the `peer_engines` pool limited
to one step) with artifacts in a temporary folder (`TRADEGAP_ARTIFACTS`). Over its GraphQL
endpoint the tests launch `nightly_regression` on small generated data (30 assets × 300
days) as the UI's button does, with the default (multiprocess) executor, and wait for it:

- the run materialized every asset of the job and every check passed but
  `matches_baseline`, which says there is no baseline yet (a warning, not a pass);
- the peer engines' steps never ran at the same time (the pool);
- `tradegap accept-baseline` (which finds the artifacts through `TRADEGAP_ARTIFACTS`), then
  a second run (in-process, to save time): every check passes, baselines `unchanged`;
- headless Chromium renders the global asset lineage page (`/asset-groups`) with the job's
  groups opened (`expanded`, group ids `global@global:<group>`); in the dumped DOM each of
  the seven main assets is a graph node (its name followed by the node's "Latest event"
  row) that shows "Materialized", and the backtest nodes show all their checks passed
  ("N / N Passed"). The window is 2560×1440: smaller, the zoom-to-fit scale drops below the
  UI's detail threshold and names are truncated. The screenshot is kept in the test's
  temporary folder;
- the `trade_gap` asset page shows the gap-by-cause plot as a picture: its metadata row
  opens ("[Show Markdown]", the UI folds markdown over 1,000 characters) onto an <img>
  whose PNG the browser decoded.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path

import pytest

from tests.browser import FLAGS, browser, chromium_path
from tests.dagster_server import ROOT, Server, ui_server

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.peers]

JOB = "nightly_regression"
MAIN_ASSETS = ("market_data", "features", "signals", "target_weights", "backtest_engine",
               "backtest_reference", "performance_summary")
BACKTESTS = ("backtest_engine", "backtest_reference")
PEERS = ("vectorbt", "backtrader", "zipline", "nautilus")
SMALL = {
    "ops": {
        "market_data": {"config": {"n_assets": 30, "n_days": 300, "seed": 1}},
        "signals": {"config": {"train_window": 60, "refit_every": 10}},
        "target_weights": {"config": {"top_k": 5, "every": 10}},
    }
}
IN_PROCESS = {**SMALL, "execution": {"config": {"in_process": {}}}}
WINDOW = "2560,1440"
JOB_ASSETS = """{ assetNodes { assetKey { path } groupName jobNames } }"""


@dataclass(frozen=True)
class CompletedRun:
    """A finished run of the job: its id, the job's assets and groups, and its events."""

    run_id: str
    job_assets: frozenset[str]
    job_groups: frozenset[str]
    events: list[dict]

    def checks(self) -> dict[tuple[str, str], dict]:
        return {("/".join(e["evaluation"]["assetKey"]["path"]), e["evaluation"]["checkName"]):
                e["evaluation"] for e in self.events
                if e["__typename"] == "AssetCheckEvaluationEvent"}

    def materialized(self) -> set[str]:
        return {"/".join(e["assetKey"]["path"]) for e in self.events
                if e["__typename"] == "MaterializationEvent"}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def server(tmp_path_factory, artifacts) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster-local.yaml").read_text())
    with ui_server(home, {"TRADEGAP_ARTIFACTS": str(artifacts)}) as running:
        yield running


def completed(server: Server, run_config: dict) -> CompletedRun:
    run_id, events = server.run_job(JOB, run_config)
    nodes = [node for node in server.graphql(JOB_ASSETS)["assetNodes"]
             if JOB in node["jobNames"]]
    return CompletedRun(
        run_id=run_id,
        job_assets=frozenset("/".join(node["assetKey"]["path"]) for node in nodes),
        job_groups=frozenset(node["groupName"] for node in nodes),
        events=events,
    )


@pytest.fixture(scope="module")
def first_run(server: Server) -> CompletedRun:
    """`nightly_regression` on small data with the default executor, no baseline yet."""
    return completed(server, SMALL)


@pytest.fixture(scope="module")
def second_run(server: Server, first_run: CompletedRun, artifacts: Path) -> CompletedRun:
    """The job again after `tradegap accept-baseline` (artifacts from the environment)."""
    accepted = subprocess.run(
        [str(Path(sys.executable).with_name("tradegap")), "accept-baseline"],
        env={"PATH": "/usr/bin:/bin", "TRADEGAP_ARTIFACTS": str(artifacts)}, cwd="/",
        capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stderr
    assert (artifacts / "baselines" / "backtest_engine" / "fingerprint.txt").is_file()
    return completed(server, IN_PROCESS)


def test_the_first_run_materializes_the_job_and_says_there_is_no_baseline(
    first_run: CompletedRun,
):
    assert set(MAIN_ASSETS) <= first_run.job_assets
    assert {"peer_engines", *(f"backtest_{peer}" for peer in PEERS)} <= first_run.job_assets
    assert first_run.materialized() == first_run.job_assets
    checks = first_run.checks()
    assert {("backtest_reference", "engine_parity"), ("backtest_engine", "ledger_identities"),
            ("backtest_reference", "ledger_identities")} <= set(checks)
    for backtest in BACKTESTS:
        baseline = checks.pop((backtest, "matches_baseline"))
        assert (baseline["success"], baseline["severity"]) == (False, "WARN")
        assert baseline["description"].startswith("no baseline: nothing accepted")
    failed = {key: check["description"] for key, check in checks.items() if not check["success"]}
    assert not failed


def test_peer_engines_never_run_two_steps_at_once(first_run: CompletedRun):
    pooled = {name for peer in PEERS for name in (f"backtest_{peer}", f"backtest_engine_{peer}")}
    spans: dict[str, list[float]] = {}
    for event in first_run.events:
        if event.get("stepKey") in pooled and event["__typename"] in (
                "ExecutionStepStartEvent", "ExecutionStepSuccessEvent"):
            spans.setdefault(event["stepKey"], []).append(float(event["timestamp"]))
    assert set(spans) == pooled
    for (a, (a_start, a_end)), (b, (b_start, b_end)) in combinations(sorted(
            (step, (min(times), max(times))) for step, times in spans.items()), 2):
        assert a_end <= b_start or b_end <= a_start, f"{a} and {b} overlapped"


def test_after_accepting_the_baselines_every_check_passes(second_run: CompletedRun):
    assert set(MAIN_ASSETS) <= second_run.materialized()
    checks = second_run.checks()
    failed = {key: check["description"] for key, check in checks.items() if not check["success"]}
    assert not failed
    for backtest in BACKTESTS:
        assert checks[backtest, "matches_baseline"]["description"].startswith("unchanged: ")


class _Text(HTMLParser):
    """The non-blank text nodes of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())


def graph_nodes(html: str) -> dict[str, list[str]]:
    """Each asset node of the rendered graph: its name → the texts of its rows."""
    parser = _Text()
    parser.feed(html)
    texts = parser.texts
    starts = [i for i in range(len(texts) - 1) if texts[i + 1] == "Latest event"]
    ends = [*starts[1:], len(texts)]
    return {texts[start]: texts[start + 1:end] for start, end in zip(starts, ends, strict=True)}


def render(chromium: str, url: str, folder: Path, budget_ms: int) -> tuple[str, str]:
    """Chromium's DOM dump of `url` (and a screenshot in `folder`); its stderr on failure."""
    from pipelines.ui import default_signals, stop_session

    profile = folder / f"profile_{budget_ms}"
    command = [chromium, *FLAGS, f"--user-data-dir={profile}",
               f"--window-size={WINDOW}", f"--virtual-time-budget={budget_ms}",
               f"--screenshot={folder / 'graph.png'}", "--dump-dom", url]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=default_signals)
    try:
        html, errors = process.communicate(timeout=budget_ms / 1000 + 60)
    except subprocess.TimeoutExpired:
        stop_session(process, 5)
        html, errors = process.communicate()
    return html, errors


def test_the_asset_graph_page_shows_every_main_asset_materialized(
    server: Server, second_run: CompletedRun, tmp_path: Path,
):
    chromium = chromium_path()
    assert server.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    main_groups = sorted(second_run.job_groups - {"peers"})  # peers stay folded: room
    expanded = ",".join(f"global@global:{group}" for group in main_groups)
    url = f"{server.url}/asset-groups?{urllib.parse.urlencode({'expanded': expanded})}"
    nodes, errors = {}, ""
    for budget_ms in (20_000, 40_000, 80_000):
        html, errors = render(chromium, url, tmp_path, budget_ms)
        nodes = graph_nodes(html)
        if all("Materialized" in nodes.get(name, ()) for name in MAIN_ASSETS):
            break
    where = f"(screenshot: {tmp_path / 'graph.png'})"
    assert set(MAIN_ASSETS) <= set(nodes), (
        f"asset nodes missing from {url} {where}; found {sorted(nodes)}\n{errors[-2000:]}")
    for name in MAIN_ASSETS:
        assert "Materialized" in nodes[name], f"{name} not shown materialized {where}"
    for name in BACKTESTS:
        passed = [t for t in nodes[name] if re.fullmatch(r"(\d+) / \1 Passed", t)]
        assert passed, f"{name} does not show all checks passed: {nodes[name]} {where}"


SHOW_PLOT = """(() => {
  const rows = Array.from(document.querySelectorAll('tr'))
    .filter(row => row.innerText.trim().startsWith('plot: '));
  const button = rows.flatMap(row => Array.from(row.querySelectorAll('*')))
    .find(node => node.children.length === 0 && node.textContent.trim() === '[Show Markdown]');
  if (!button) return rows.length ? 'no button' : '';
  button.click();
  return 'clicked';
})()"""
PICTURES = """Array.from(document.querySelectorAll('img'))
  .filter(img => img.src.startsWith('data:image/png;base64,') && img.complete
                 && img.naturalWidth > 0)
  .map(img => [img.alt, img.naturalWidth, img.naturalHeight])"""


def test_the_trade_gap_page_shows_the_gap_plot_as_a_picture(
    server: Server, first_run: CompletedRun, tmp_path: Path,
):
    server.graphql("mutation { setNuxSeen }")
    with browser() as page:
        page.open(f"{server.url}/assets/trade_gap")
        clicked = page.wait_for(SHOW_PLOT, 90)
        page.screenshot(tmp_path / "trade_gap.png")
        assert clicked == "clicked", f"no plot row to open (screenshot {tmp_path})"
        pictures = page.wait_for(PICTURES, 30)
        page.screenshot(tmp_path / "trade_gap_plot.png")
    assert pictures, f"no decoded PNG on the trade_gap page (screenshots in {tmp_path})"
    alt, width, height = pictures[0]
    assert alt.startswith("equity gap by cause: ")
    assert (width, height) == (1000, 600)  # render_png's 10 × 6 inches at 100 dpi
