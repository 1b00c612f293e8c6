"""A seed-style event-driven engine, built to be diagnosed: market events on a bus, a
ranking strategy calling `order_target_percent`, a broker with its own portfolio, an
optional risk manager, and wiring-bug switches (`wiring.py`) that are all off by default.

Without bugs its fills equal the reference under the `tradegap` profile (next open, book
valued at the fill, sells first, buys in ascending value, the last buy shrunk to the cash
left). `run_engine` runs it; `generator.draw_engine` draws engines with random bugs and
the truth about them, `judging.judge` holds the gap analysis against that truth, and
`story.run_demo` is `tradegap demo`. docs/demo.md describes it all.
"""

from engine.demo.engine import EngineRun, run_engine
from engine.demo.wiring import BUGS, Bug, Wiring

__all__ = ["BUGS", "Bug", "EngineRun", "Wiring", "run_engine"]
