"""The trade-gap analysis on drawn engines: precision and recall of the causes it names.

Draws `--n` seed-style event-driven engines (engine/demo/generator.py: random markets,
one to three random wiring bugs with random onsets, a negative control in about one draw
in six), analyzes each against the reference with the weights (or, with
`--without-weights`, with decisions inferred from A) and prints:
- precision: the named causes (besides `propagated`, `unexplained`) that name a planted
  bug which changed a fill, over all named causes;
- recall: the planted bugs in the vocabulary that changed a fill and were named;
- onset accuracy: named bugs with a fault of their cause starting between the bug's onset
  and the first bar it changed;
- the unexplained share of the gap where every planted bug is in the vocabulary;
- the negative controls (a bug outside the vocabulary): how many came out `unexplained`;
- per bug, and (with `--show`) every draw the analysis got wrong and how.

With `--with BUG` every draw has that bug (in place of the first one drawn): the bug beside
the others, e.g. `--with risk_manager` for a risk manager's exits of positions other bugs
changed.

With `--every K` the figures so far are printed after every K draws, so a long draw that
is stopped still leaves its figures.

Usage: python bench/gap_drawn.py [--n 500] [--start 0] [--without-weights] [--show]
                                 [--with BUG] [--every K]
"""

from __future__ import annotations

import argparse
import time

from engine.demo.generator import WIRING_BUGS, draw_engine
from engine.demo.judging import Scorecard, analyze_drawn, judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="engines drawn (default 500)")
    parser.add_argument("--start", type=int, default=0, help="first draw's seed")
    parser.add_argument("--without-weights", action="store_true",
                        help="infer the decisions from A instead of passing the weights")
    parser.add_argument("--show", action="store_true", help="list every draw gotten wrong")
    parser.add_argument("--with", dest="forced", choices=WIRING_BUGS,
                        help="a bug put in every draw")
    parser.add_argument("--every", type=int, default=0,
                        help="print the figures so far after every K draws")
    args = parser.parse_args()
    card = Scorecard()
    started = time.perf_counter()
    for seed in range(args.start, args.start + args.n):
        drawn = draw_engine(seed, forced=args.forced)
        judgement = judge(drawn, analyze_drawn(drawn, not args.without_weights))
        card.add(drawn, judgement)
        if args.show and not judgement.right:
            print(f"{judgement.draw}\n  verdict {judgement.verdict}, named "
                  f"{', '.join(judgement.named) or 'nothing'}")
            for problem in judgement.problems:
                print(f"  - {problem}")
        done = seed - args.start + 1
        if args.every and done % args.every == 0 and done < args.n:
            report(card, args, done, time.perf_counter() - started)
    report(card, args, args.n, time.perf_counter() - started)


def report(card: Scorecard, args: argparse.Namespace, n: int, seconds: float) -> None:
    """The figures over the first `n` draws."""
    mode = "without weights" if args.without_weights else "with the weights"
    if args.forced:
        mode += f", each with {args.forced}"
    print(f"\n{n} drawn engines (seeds {args.start}..{args.start + n - 1}), "
          f"analyzed {mode} in {seconds:.0f} s ({seconds / max(n, 1):.1f} s each)", flush=True)
    for name, value in card.figures().items():
        shown = f"{value:.1%}" if isinstance(value, float) else f"{value}"
        print(f"  {name:<48} {shown}")
    print("\n  per bug (with a trace, in the vocabulary): planted, named, right onset")
    for name, (planted, named, onset) in card.by_bug().items():
        print(f"  {name:<18} {planted:>5} {named:>6} {onset:>6}", flush=True)


if __name__ == "__main__":
    main()
