"""A process that runs backtests keeps the memory a run freed for the next one (glibc's
trim threshold, `engine.memory`), and leaves malloc alone where the process tuned it."""

from __future__ import annotations

import os
import subprocess
import sys

from engine.memory import TUNED

FREED = """
import numpy as np
from engine.memory import keep_freed_memory
from engine.backtest import market_of
from engine.data.synthetic import generate_market

market_of(generate_market(n_assets=3, n_days=20, seed=0))
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
block = np.ones(40 << 17)  # 40 MB, written
held = rss()
del block
print(keep_freed_memory(), (held - rss()) >> 20)
"""


def run(environment: dict[str, str]) -> tuple[bool, int]:
    """(kept, MB given back to the system when a 40 MB array is freed) after a run, in a
    process whose malloc settings are `environment`'s only (a Dask nanny started earlier in
    this process sets its own in `os.environ`)."""
    inherited = {k: v for k, v in os.environ.items() if k not in TUNED}
    done = subprocess.run([sys.executable, "-c", FREED], capture_output=True, text=True,
                          check=True, env={**inherited, **environment})
    kept, returned = done.stdout.split()
    return kept == "True", int(returned)


def test_memory_freed_after_a_run_stays_for_the_next():
    kept, returned = run({})
    assert kept and returned < 8


def test_a_process_that_tuned_malloc_is_left_alone():
    kept, returned = run({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not kept and returned >= 32
