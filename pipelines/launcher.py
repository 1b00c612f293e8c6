"""The instance's run launcher: Dagster's default one, plus a health check of run workers.

Dagster's default launcher cannot tell the run monitoring daemon whether a run's process is
alive, so a run whose process died (a database outage it could not survive, a kill, an
out-of-memory) stays STARTED forever and keeps its concurrency slots. This launcher answers
from the process table: the run worker is the process that wrote the run's RUN_START event
(the code server's subprocess for a launched run, the command itself for
`dagster job execute`); when no process with that id and a start time before the run's
start exists, the worker is dead and the daemon marks the run failed, which frees its slots
(`free_slots_after_run_end_seconds`) and fires the run-failure alert.

Run workers must run on the daemon's machine, as the default launcher and `dg dev` start
them; a run executed on another machine would be judged dead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

CLOCK_SLACK_SECONDS = 2.0


def _boot_time() -> float | None:
    with contextlib.suppress(OSError, StopIteration, ValueError):
        lines = Path("/proc/stat").read_text().splitlines()
        return float(next(line for line in lines if line.startswith("btime")).split()[1])
    return None


def process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), None if there is no such
    process; where /proc is missing, the current time for a live process."""
    boot = _boot_time()
    if boot is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # exited, not yet reaped
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def worker_status(pid: int, started_at: float) -> CheckRunHealthResult:
    """The health of the run worker `pid`, which wrote RUN_START at `started_at`."""
    began = process_start(pid)
    if began is not None and began <= started_at + CLOCK_SLACK_SECONDS:
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is alive")
    return CheckRunHealthResult(
        WorkerStatus.FAILED, f"run worker process {pid} is gone (it died without ending the "
        "run: killed, out of memory, or unable to reach the instance's database)")


class WatchedRunLauncher(DefaultRunLauncher):
    """The default launcher, able to tell the run monitoring daemon a run worker died."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        records = self._instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
        if not records:  # not started yet: the start timeout covers it
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not started yet")
        entry = records[0].event_log_entry
        return worker_status(entry.dagster_event.pid, entry.timestamp)
