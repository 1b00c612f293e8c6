"""One run at a time per artifact folder: an exclusive lock held for the whole run.

Two runs writing the same folder would read each other's artifacts (one run's empty
`backtest_external` replacing another's before its `trade_gap` reads it); the second run
waits, saying for whom, then runs on its own inputs. The lock file lives in the folder, and
a run swaps in a new version of the folder (`pipelines.run`): a waiter that wakes holding
the lock of a folder no longer in place locks the one that is.
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
    path = folder / LOCK_NAME
    waited = False
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 (held until the run ends)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(path)
                if not wait:
                    raise RuntimeError(f"{folder}: another tradegap run holds it "
                                       f"({holder})") from None
                if not waited:
                    print(f"tradegap: waiting for the run using {folder} to finish "
                          f"({holder})", file=sys.stderr, flush=True)
                    waited = True
                fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
        if _is_at(handle, path):
            break
        handle.close()  # the folder was replaced while we waited: lock the one in place
    with handle:
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


def _is_at(handle, path: Path) -> bool:
    """Whether the open lock file `handle` is still the one at `path`."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "unknown process"
    if not holder:
        return "a run starting"
    return f"pid {holder.get('pid')}, since {holder.get('since')}"
