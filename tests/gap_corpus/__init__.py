"""A corpus of fill-log pairs for the trade-gap analyzer, and what is true about each.

Every pair has a trusted side A (real vectorbt 1.2, or the tradegap engine where the two
are identical) and a side B made with known differences: real vectorbt with other
settings, real backtrader and zipline, and a plain per-order loop (`loop.py`) written apart
from the engine and the reference, with faults injected (`faults.py`), negative controls
among them. `manifest.py` states, for each pair, the causes of the first divergence, every
cause among the faults, and the verdict; `build.py` makes the logs and computes the onset
(and end) from B's construction; `run.py` runs the analyzer and lists what it gets wrong.

`tests/test_gap_corpus.py` asserts every pair; `python -m tests.gap_corpus` writes the
results table to `out/gap_corpus.md`.
"""
