"""A backtest loads only what it uses: `tradegap backtest` runs and writes its validated
tables without Dagster, plotting, pandas, pandera or pyarrow (the tables are checked
against the pandera models' declarations with polars; pandera is loaded only for a table
that fails them), and without scipy's linear algebra, which numba would import for a
BLAS probe no kernel needs (`engine.jit`); `run_backtest` with every table starts without
any of them. A kernel loaded from the cache leaves numba's implementation registries
unloaded until something is compiled, and a cached function whose code needs numba's array
routines loads them without scipy's linear algebra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("dagster", "matplotlib", "pandas", "pandera", "pyarrow", "scipy.linalg")
LOADED = f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    prices, weights = folder / "prices.parquet", folder / "weights.parquet"
    assert main(["generate", "--prices", str(prices), "--weights", str(weights),
                 "--assets", "20", "--days", "120", "--top", "5", "--every", "5"]) == 0
    return prices, weights


def loaded_after(code: str) -> set[str]:
    """The heavy packages a new interpreter holds after running `code`."""
    done = subprocess.run([sys.executable, "-c", f"import sys\n{code}\n{LOADED}"],
                          capture_output=True, text=True, check=True)
    return set(filter(None, done.stdout.splitlines()[-1].split(",")))


def test_tradegap_backtest_imports_no_dagster_matplotlib_pandas_pandera_or_pyarrow(data, tmp_path):
    prices, weights = data
    argv = ["backtest", "--prices", str(prices), "--weights", str(weights), "--out",
            str(tmp_path / "out"), "--fees", "0.001"]
    loaded = loaded_after(f"from pipelines.cli import main\nassert main({argv!r}) == 0")
    assert loaded == set()
    assert (tmp_path / "out" / "trades.parquet").is_file()


def test_run_backtest_with_every_table_imports_no_pandas_pandera_or_dagster(data):
    prices, weights = data
    loaded = loaded_after(
        "from engine import BacktestConfig, run_backtest\n"
        f"result = run_backtest({str(prices)!r}, {str(weights)!r}, BacktestConfig(fees=0.001))\n"
        "assert result.tables()['fills'].height and result.metrics['final_equity'] > 0")
    assert loaded == set()


def test_numba_linear_algebra_still_works_after_the_engine_set_numba_up():
    done = subprocess.run([sys.executable, "-c", (
        "import engine.jit\n"
        "import numpy as np\n"
        "from numba import njit\n"
        "dot = njit(lambda a, b: np.dot(a, b))\n"
        "correlate = njit(lambda a, b: np.correlate(a, b))\n"
        "a, b = np.arange(1.0, 4.0), np.array([2.0, 0.5, 1.0])\n"
        "print(dot(a, b), correlate(a, b)[0], np.dot(a, b))")],
        capture_output=True, text=True, check=True)
    jitted, correlated, plain = map(float, done.stdout.split())
    assert jitted == correlated == plain == 6.0


REGISTRIES = ("numba.np.arraymath", "numba.core.typing.cffi_utils", "numba.cpython.listobj")
CACHED_THEN_COMPILED = (
    "import sys\n"
    "import numpy as np\n"
    "from engine.data.grid import _bar_grid\n"
    "from engine.jit import njit\n"
    "stamps, values = np.array([1, 1, 2, 2]), np.array([1.0, 2.0, 1.5, 1.0])\n"
    "width = _bar_grid(stamps, values, values, values, values, values)\n"
    f"print(','.join(m for m in {REGISTRIES!r} if m in sys.modules))\n"
    "distinct = njit(lambda n: sorted(set([i % 3 for i in range(n)])))\n"
    "print(width, distinct(10), njit(lambda a: np.sort(a)[0])(values))"
)


def test_a_cached_kernel_loads_without_numbas_registries_and_a_compile_after_it_works():
    for _ in range(2):  # the first run may compile the kernel; the second loads it
        done = subprocess.run([sys.executable, "-c", CACHED_THEN_COMPILED],
                              capture_output=True, text=True, check=True)
    registries, results = done.stdout.splitlines()[-2:]
    assert registries == ""
    assert results == "2 [0, 1, 2] 1.0"


def test_a_cached_function_that_needs_numbas_array_routines_loads_them_without_scipy(tmp_path):
    (tmp_path / "summed.py").write_text(
        "import numpy as np\n"
        "from numba import njit\n\n\n"
        "@njit(cache=True)\n"
        "def total(a):\n"
        "    return np.cumsum(a)[-1]\n")
    code = ("import sys\n"
            "import engine.jit\n"
            "import numpy as np\n"
            "from summed import total\n"
            "print(total(np.arange(5.0)), 'numba.np.arraymath' in sys.modules, "
            "'scipy.linalg' in sys.modules)")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    for _ in range(2):  # compiled and cached, then loaded from the cache
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env=environment)
    assert done.stdout.split() == ["10.0", "True", "False"]
