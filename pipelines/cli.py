"""The `tradegap` command line: backtest files, generate demo data, run the main job.

Bad input prints one line naming the file, column and first offending rows, and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.core.config import CASH_POLICIES, FILL_TIMINGS, SHARE_MODES, BacktestConfig
from engine.core.profiles import PROFILES
from engine.errors import InputError

EXIT_BAD_INPUT = 2


def _backtest_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="backtest target weights on prices")
    p.add_argument("--prices", required=True, help="Parquet or CSV: timestamp, asset, OHLCV")
    p.add_argument("--weights", required=True, help="Parquet or CSV: timestamp, asset, weight")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--profile", choices=list(PROFILES), default="tradegap",
                   help="named execution semantics: tradegap (default), vectorbt, backtrader, "
                        "zipline; a profile sets the settings it needs")
    p.add_argument("--fill", choices=FILL_TIMINGS)
    p.add_argument("--fees", type=float, help="fraction of traded value")
    p.add_argument("--per-share", type=float, help="commission per share")
    p.add_argument("--min-fee", type=float, help="minimum per-share commission")
    p.add_argument("--fixed-fee", type=float, help="fee per filled order")
    p.add_argument("--slippage", type=float, help="fraction of price")
    p.add_argument("--shares", choices=SHARE_MODES)
    p.add_argument("--cash-policy", choices=CASH_POLICIES)
    p.add_argument("--cash", type=float, help="initial cash (default 1,000,000)")
    p.add_argument("--allow-short", action="store_true", default=None)
    p.add_argument("--allow-leverage", action="store_true", default=None,
                   help="buy beyond the cash, up to the buying power cash left + "
                        "(max leverage − 1) × book value")
    p.add_argument("--max-leverage", type=float,
                   help="gross book value over equity allowed with --allow-leverage (default 2)")


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write synthetic prices and top-k momentum weights")
    p.add_argument("--prices", required=True, help="output prices file (.parquet or .csv)")
    p.add_argument("--weights", required=True, help="output weights file (.parquet or .csv)")
    p.add_argument("--assets", type=int, default=500)
    p.add_argument("--days", type=int, default=2520)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=25, help="assets held (equal weight)")
    p.add_argument("--every", type=int, default=21, help="bars between rebalances")


SETTINGS = {"fill": "fill", "fees": "fees", "per_share": "per_share", "min_fee": "min_fee",
            "fixed_fee": "fixed_fee", "slippage": "slippage", "shares": "shares",
            "cash_policy": "cash_policy", "cash": "initial_cash",
            "allow_short": "allow_short", "allow_leverage": "allow_leverage",
            "max_leverage": "max_leverage"}


def config_from_args(args: argparse.Namespace) -> BacktestConfig:
    """The profile's settings with those named on the command line on top."""
    given = {field: getattr(args, arg) for arg, field in SETTINGS.items()
             if getattr(args, arg) is not None}
    return BacktestConfig.for_profile(args.profile, **given)


def cmd_backtest(args: argparse.Namespace) -> int:
    from engine.core.backtest import run_backtest

    try:
        config = config_from_args(args)
    except ValueError as error:
        raise InputError("command line", str(error)) from None
    result = run_backtest(Path(args.prices), Path(args.weights), config)
    out = result.save(args.out)
    metrics = result.metrics
    print(f"{result.fills.height} fills, final equity {metrics['final_equity']:,.2f} "
          f"(total return {metrics['total_return']:+.2%}); wrote {out}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.data.synthetic import generate_market, momentum_scores
    from engine.research.weights import top_k_weights
    from engine.results.artifacts import write_table

    market = generate_market(n_assets=args.assets, n_days=args.days, seed=args.seed)
    weights = top_k_weights(momentum_scores(market), k=args.top, every=args.every)
    write_table(market, args.prices)
    write_table(weights, args.weights)
    print(f"wrote {market.height} bars to {args.prices} and {weights.height} weights "
          f"to {args.weights}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run import run_main_job

    return run_main_job(out=args.out)


def cmd_accept_baseline(args: argparse.Namespace) -> int:
    from assets.groups import BACKTEST_ASSETS
    from pipelines.resources import ArtifactStore

    store = ArtifactStore(base_dir=str(Path(args.out, "artifacts")))
    for backtest in args.backtests or BACKTEST_ASSETS:
        try:
            folder = store.accept_baseline(backtest)
        except FileNotFoundError as missing:
            raise InputError(str(args.out), str(missing)) from None
        print(f"accepted {backtest} as its baseline: {folder}")
    return 0


def _gap_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gap", help="explain every difference between two backtests")
    p.add_argument("--a", required=True, help="backtest output folder or fills file (A)")
    p.add_argument("--b", required=True, help="backtest output folder or fills file (B)")
    p.add_argument("--prices", required=True, help="Parquet or CSV: timestamp, asset, OHLCV")
    p.add_argument("--weights", help="target weights both sides traded (enables replay)")
    p.add_argument("--cash", type=float, help="initial cash (default: A's, else 1,000,000)")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")


def cmd_gap(args: argparse.Namespace) -> int:
    from engine.gap.files import run_gap
    from engine.gap.report import headline

    analysis = run_gap(args.a, args.b, args.prices, args.out, args.weights, args.cash)
    print(f"{analysis.summary['verdict']}: {headline(analysis.summary)}")
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradegap", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _backtest_parser(sub)
    _generate_parser(sub)
    _gap_parser(sub)
    run = sub.add_parser("run", help="run the main job on the embedded default data")
    run.add_argument("--out", default="out", help="artifact folder (default: out)")
    accept = sub.add_parser(
        "accept-baseline",
        help="accept the current backtest results as the baselines the nightly run checks")
    accept.add_argument("backtests", nargs="*", help="backtest assets (default: all)")
    accept.add_argument("--out", default="out", help="artifact folder (default: out)")
    return parser


COMMANDS = {"backtest": cmd_backtest, "generate": cmd_generate, "run": cmd_run,
            "accept-baseline": cmd_accept_baseline, "gap": cmd_gap}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as error:
        print(f"tradegap: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
