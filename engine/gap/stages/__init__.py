"""The stages of the trade-gap analysis, each a function that takes the `Analysis` state
(state.py) and adds its part, run in this order by `engine.gap.analyze.analyze`:
read, decide, diagnose, attribute, label, report."""
