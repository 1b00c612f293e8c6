"""One run at a time per artifact folder: an exclusive lock held for the whole run.

Two runs writing the same folder would read each other's artifacts (one run's empty
`backtest_external` replacing another's before its `trade_gap` reads it); the second run
waits, saying for whom, then runs on its own inputs.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".tradegap-run.lock"


@contextmanager
def artifact_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """Hold the artifact folder's lock; while another run holds it, wait (or raise)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise RuntimeError(f"{folder}: another tradegap run holds it ({holder})") \
                    from None
            print(f"tradegap: waiting for the run using {folder} to finish ({holder})",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "since": time.strftime(
            "%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "unknown process"
    if not holder:
        return "a run starting"
    return f"pid {holder.get('pid')}, since {holder.get('since')}"
