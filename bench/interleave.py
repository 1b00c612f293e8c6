"""Engines timed side by side under the same load: one long-lived process per engine (so
peak RSS stays per engine), their runs interleaved repeat by repeat, each run's wall and
CPU seconds (`time.process_time`, every thread of the process) reported.

On a shared machine other work only adds time, and it adds it to both engines of a repeat
alike; the ratio of a repeat compares two runs made one after the other. Summaries give
the spread over repeats (best, median, worst) and the worst ratio, not only the best.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def serve(runs: dict[str, Callable[[], object]]) -> None:
    """Worker side: answer each line of stdin naming a run with its seconds and result
    (one JSON line each); `peak` answers the process's peak RSS in MB."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if name == "peak":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"peak_mb": peak}), flush=True)
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        result = runs[name]()
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                          "result": result}), flush=True)


class Worker:
    """A worker process (`serve` on its side) started with `argv` after the interpreter."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self._read()

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {self.process.args[1:]} ended without answering")
            if line.startswith("{"):
                return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def interleave(workers: dict[str, Worker], runs: list[str], repeats: int
               ) -> dict[tuple[str, str], list[dict]]:
    """Every run of every worker, `repeats` times, interleaved: within a repeat each run
    goes to every worker in turn, the order of the workers reversed every other repeat."""
    answers: dict[tuple[str, str], list[dict]] = {}
    for repeat in range(repeats):
        order = list(workers) if repeat % 2 == 0 else list(reversed(workers))
        for run in runs:
            for name in order:
                answers.setdefault((name, run), []).append(workers[name].ask(run))
    return answers


def spread(answers: list[dict], key: str = "wall") -> str:
    """Best, median and worst seconds of the repeats."""
    values = [a[key] for a in answers]
    return (f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f} s")


def ratios(theirs: list[dict], ours: list[dict]) -> dict[str, float]:
    """Their seconds over ours: per repeat on wall time (best, median, worst), and on the
    median CPU seconds."""
    per_repeat = sorted(t["wall"] / o["wall"] for t, o in zip(theirs, ours, strict=True))
    return {"best": per_repeat[-1], "median": statistics.median(per_repeat),
            "worst": per_repeat[0],
            "cpu": statistics.median(t["cpu"] for t in theirs)
            / statistics.median(o["cpu"] for o in ours)}


def in_order(theirs: list[dict], ours: list[dict]) -> str:
    """Their wall seconds over ours for each repeat in the order run: the first is each
    process's first full-size run, which faults in its memory fresh."""
    return ", ".join(f"{t['wall'] / o['wall']:.2f}×" for t, o in zip(theirs, ours, strict=True))


def ratio_text(figures: dict[str, float]) -> str:
    return (f"best {figures['best']:.2f}×, median {figures['median']:.2f}×, "
            f"worst {figures['worst']:.2f}×; CPU {figures['cpu']:.2f}×")
