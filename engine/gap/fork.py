"""Two independent parts of an analysis at once, where the machine has a second core.

`both(first, second)` runs `first` in a forked child process and `second` here; the
child's result comes back pickled through a pipe. The child inherits everything as it is
(no arguments to send), draws no progress, forks no further and touches nothing shared:
the parts handed to it are pure computations of the analysis' own state (replays,
diagnoses). Off Linux, with one core, or with `TRADEGAP_WORKERS=1`, they run one after
the other, here, with the same results."""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def workers() -> int:
    """The parts run at once here: 2 on Linux with a second core, else 1 (macOS' system
    libraries are not safe to use in a forked child)."""
    if not sys.platform.startswith("linux") or os.environ.get("TRADEGAP_WORKERS") == "1":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1
    return 2 if cores > 1 else 1


def cpu_time() -> float:
    """CPU seconds of this process and of the parts it forked and collected so far (what
    an analysis cost, whichever process ran it)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """(`first()`, `second()`), the first computed in a forked child while this process
    computes the second; an exception in either is raised here (a child that dies without
    a result, killed from outside, leaves its part to be computed here)."""
    if workers() < 2:
        return first(), second()
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without running any exit handler
        try:
            os.close(read)
            os.environ["TRADEGAP_PROGRESS"] = "0"
            os.environ["TRADEGAP_WORKERS"] = "1"  # the child's own parts one after the other
            try:
                payload = pickle.dumps((True, first()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as error:  # sent to the parent, raised there
                payload = _failure(error)
            with os.fdopen(write, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write)
    pipe = os.fdopen(read, "rb")
    try:
        mine = second()
        payload = pipe.read()
    except BaseException:  # stop the child and collect it before raising
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        pipe.close()
        os.waitpid(pid, 0)
    if not payload:  # the child died without a result (killed): its part is done here
        return first(), mine
    ok, value = pickle.loads(payload)
    if not ok:
        raise value
    return value, mine


def _failure(error: BaseException) -> bytes:
    """The child's exception, pickled (as a RuntimeError naming it if it cannot be)."""
    try:
        return pickle.dumps((False, error))
    except Exception:
        return pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
