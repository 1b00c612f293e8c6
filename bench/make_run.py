"""`make run` end to end: wall time against the 60 s budget, and the time of each step.

Runs `tradegap run --out <temporary folder>` (what `make run` runs, on the embedded default
data: 500 assets × 2,520 days) as a fresh process, so the wall time includes Python
start-up, imports and the summary printed at the end. Each line the command prints is
timestamped as it arrives (every progress line is flushed). A step's time is the
difference between its completion line and the previous line: `make run` executes the
steps one after another in one process, so that is the step's own time, loading its
inputs and writing its artifact included; the first step also pays for building the job
and starting the run. Start-up is the time until the command's first line, which it
prints once the definitions are imported. Usage (from the repository root):

    .venv/bin/python bench/make_run.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 60.0
PROGRESS = re.compile(r"^\s*\[\s*[\d.]+s\] (?P<label>.+)$")


def tradegap_command() -> Path:
    """The `tradegap` script beside this interpreter, else the project's `.venv`."""
    for candidate in (Path(sys.executable).with_name("tradegap"),
                      ROOT / ".venv" / "bin" / "tradegap"):
        if candidate.is_file():
            return candidate
    sys.exit("bench/make_run.py: no tradegap command; run `make run` once to install it")


def timed_lines(command: list[str]) -> tuple[list[tuple[float, str]], float, int]:
    """Each output line with its arrival time, the wall time and the exit status."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.perf_counter() - start, line.rstrip("\n")) for line in process.stdout]
    status = process.wait()
    return lines, time.perf_counter() - start, status


def step_rows(lines: list[tuple[float, str]], wall: float) -> list[tuple[str, float, float]]:
    """(label, finished at, took) for start-up, every progress line, and the summary."""
    rows = [("start-up: interpreter, imports, definitions", lines[0][0], lines[0][0])]
    previous = lines[0][0]
    for arrived, line in lines[1:]:
        match = PROGRESS.match(line)
        if match:
            rows.append((match["label"], arrived, arrived - previous))
            previous = arrived
    rows.append(("summary printed, process exit", wall, wall - previous))
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="make_run_") as out:
        command = [str(tradegap_command()), "run", "--out", out]
        print(f"make run's work: {' '.join(command)}", flush=True)
        lines, wall, status = timed_lines(command)
    if status != 0 or not lines:
        print("\n".join(line for _, line in lines))
        print(f"tradegap run failed with status {status} after {wall:.1f}s", file=sys.stderr)
        return 1
    verdict = "within budget" if wall <= BUDGET_SECONDS else "OVER BUDGET"
    print(f"wall time {wall:.1f} s of the {BUDGET_SECONDS:.0f} s budget "
          f"({wall / BUDGET_SECONDS:.0%}): {verdict}\n")
    rows = step_rows(lines, wall)
    width = max(len(label) for label, _, _ in rows)
    print(f"  {'step':<{width}}  finished at    took")
    for label, finished, took in rows:
        print(f"  {label:<{width}}  {finished:9.1f} s  {took:5.1f} s")
    print("\ntook = time since the previous line (steps run one after another in one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
