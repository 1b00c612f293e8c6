"""The warm-up before `make run` compiles every kernel a run uses: afterwards a new process
backtesting weights, stops or an order table compiles nothing, and the warm-up itself has
nothing left to do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

COUNT_COMPILES = textwrap.dedent("""
    import sys
    from numba.core import event
    from pipelines.cli import main

    compiled = []

    class Count(event.Listener):
        def on_start(self, evt):
            compiled.append(evt)

        def on_end(self, evt):
            pass

    with event.install_listener("numba:compile", Count()):
        for argv in sys.argv[1:]:
            assert main(argv.split()) == 0, argv
    print(len(compiled))
""")


def test_after_the_warm_up_a_new_process_compiles_nothing(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    prices, weights = tmp_path / "prices.parquet", tmp_path / "weights.csv"
    orders = tmp_path / "orders.csv"
    subprocess.run([sys.executable, "-m", "pipelines.cli", "generate", "--prices",
                    str(prices), "--weights", str(weights), "--assets", "30", "--days",
                    "250"], check=True, env=env, capture_output=True)
    orders.write_text("timestamp,asset,type,quantity,limit_price,stop_price\n"
                      "2010-02-01,A0001,market,10,,\n2010-02-01,A0002,limit,5,1.0,\n"
                      "2010-02-02,A0001,stop,-10,,0.5\n")
    warm = subprocess.run([sys.executable, "-m", "engine.warmup"], env=env,
                          capture_output=True, text=True, check=True)
    assert int(warm.stdout.split()[1]) > 0
    again = subprocess.run([sys.executable, "-m", "engine.warmup"], env=env,
                           capture_output=True, text=True, check=True)
    assert "compiled already" in again.stdout
    common = f"--prices {prices} --weights {weights}"
    runs = [f"backtest {common} --out {tmp_path / 'plain'}",
            f"backtest {common} --out {tmp_path / 'stops'} --stop-loss 0.05 "
            "--take-profit 0.1 --profile vectorbt",
            f"backtest --prices {prices} --orders {orders} --out {tmp_path / 'orders'}"]
    done = subprocess.run([sys.executable, "-c", COUNT_COMPILES, *runs], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0"
