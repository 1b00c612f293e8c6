"""The `tradegap` command line: backtest files, generate demo data, run the main job.

Exit codes: 0 success; 1 a step of `run` failed (named on stderr), or an error of the
system (disk full, permission denied, a read-only folder), printed as one line naming the
path and the cause, or an output replaced by that of another command writing the same
folder that finished after it; 2 bad input (in `run` too, found by a step), printed as one
line naming the file, column and first offending rows (an output folder that is not ours
to replace is bad input too: nothing is written); 3 every step of `run` ran but an
ERROR-severity check failed (named on stderr). Outputs are left as they were on every
error, and on Ctrl-C or SIGTERM (one line, exit 128 + the signal's number: 130, 143), which
stop the command after removing whatever it had half written (`run` reports both as
SIGINT: Dagster maps SIGTERM to it while it runs).

An output folder (`--out`) is replaced only when it is new, empty, or an earlier tradegap
output of the same kind holding nothing else (a marker file lists what it wrote); `--force`
replaces a tradegap output of another kind. An output may never contain an input.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import typing
from pathlib import Path

from engine.core.config import (
    CASH_POLICIES,
    FILL_TIMINGS,
    INTRABAR_PATHS,
    SHARE_MODES,
    STOP_BASES,
    TRAIL_SOURCES,
    BacktestConfig,
)
from engine.core.profiles import PROFILES
from engine.errors import InputError, OutputReplaced

EXIT_BAD_INPUT = 2
OUT_HELP = ("output folder: new, empty, or an earlier output of this command (replaced "
            "atomically; a folder holding anything else is refused)")
FORCE_HELP = "replace a tradegap output of another kind in --out"
EXIT_SYSTEM_ERROR = 1
EXIT_OUTPUT_REPLACED = 1  # the output was written, then replaced by another's: not in place
EXIT_SIGNAL = 128  # stopped by a signal: 128 + its number, as a shell reports it


def _backtest_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="backtest target weights or an order table on prices")
    p.add_argument("--prices", required=True, help="Parquet or CSV: timestamp, asset, OHLCV")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--weights", help="Parquet or CSV: timestamp, asset, weight")
    what.add_argument("--orders",
                      help="Parquet or CSV: timestamp, asset, type, quantity, limit_price, "
                           "stop_price, trail, valid_until, group (docs/semantics.md)")
    p.add_argument("--out", required=True, help=OUT_HELP)
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--profile", choices=list(PROFILES), default="tradegap",
                   help="named execution semantics: tradegap (default), vectorbt, backtrader, "
                        "zipline, nautilus; a profile sets the settings it needs")
    p.add_argument("--repair-ohlc", action="store_true",
                   help="accept bars whose high or low does not cover the open and close by "
                        "widening them (refused by default)")
    for field, flag, options in setting_options():
        p.add_argument(flag, dest=field, **options)


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write synthetic prices and top-k momentum weights")
    p.add_argument("--prices", required=True, help="output prices file (.parquet or .csv)")
    p.add_argument("--weights", required=True, help="output weights file (.parquet or .csv)")
    p.add_argument("--assets", type=positive_int, default=500)
    p.add_argument("--days", type=positive_int, default=2520,
                   help="bars per asset, more than the 21-bar momentum lookback")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=positive_int, default=25, help="assets held (equal weight)")
    p.add_argument("--every", type=positive_int, default=21, help="bars between rebalances")
    p.add_argument("--force", action="store_true", help="replace existing files")


def positive_int(text: str) -> int:
    """A command-line count: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


FLAGS = {"initial_cash": "--cash"}
HELP = {
    "initial_cash": "initial cash", "fill": "when an order decided at a close fills",
    "fees": "fraction of traded value", "per_share": "commission per share",
    "min_fee": "minimum per-share commission", "fixed_fee": "fee per filled order",
    "slippage": "fraction of price", "shares": "fractional, or integer (floors the order)",
    "cash_policy": "what a buy that does not fit the cash does",
    "periods_per_year": "bars per year, for annualized metrics",
    "intrabar_path": "the price path a bar is read along by resting orders; close: the "
                     "close alone, zipline's way (default: the profile's)",
    "stop_first": "a stop reached in a bar fills before its OCO sibling (default: the "
                  "profile's)",
    "stop_base": "price the risk rules' levels are set from: the entry's fill, or the entry "
                 "bar's close (default: the profile's)",
    "trail_source": "what a trailing stop follows: each bar's high/low, or its close "
                    "(default: the profile's)",
    "stop_loss": "exit a position this fraction below its stop base (0: off)",
    "take_profit": "exit a position this fraction above its stop base (0: off)",
    "trailing_stop": "exit a position this fraction below its peak (0: off)",
    "max_bars": "exit a position after this many bars (0: off)",
    "max_positions": "refuse entries beyond this many positions (0: off)",
    "max_gross": "refuse entries beyond this gross exposure over equity (0: off)",
    "max_weight": "refuse entries beyond this value of one asset over equity (0: off)",
    "halt_drawdown": "refuse entries while equity is this fraction below its peak (0: off)",
}
CHOICES = {"fill": FILL_TIMINGS, "shares": SHARE_MODES, "cash_policy": CASH_POLICIES,
           "intrabar_path": INTRABAR_PATHS, "stop_base": STOP_BASES,
           "trail_source": TRAIL_SOURCES}


def setting_options() -> list[tuple[str, str, dict]]:
    """(field, flag, argparse options) for every `BacktestConfig` field but the profile.

    Generated from the dataclass, so a new setting is an option with the engine's default
    (shown in the help) without an edit here; a flag given on the command line overrides it.
    """
    hints = typing.get_type_hints(BacktestConfig)
    options = []
    for field in dataclasses.fields(BacktestConfig):
        if field.name == "profile":
            continue
        flag = FLAGS.get(field.name, "--" + field.name.replace("_", "-"))
        kind = _plain_type(hints[field.name])
        text = HELP.get(field.name, field.name.replace("_", " "))
        if field.default is not None:
            text += f" (default {field.default})"
        if kind is bool and field.default is None:
            options.append((field.name, flag, {"action": argparse.BooleanOptionalAction,
                                               "default": None, "help": text}))
            continue
        if kind is bool:
            options.append((field.name, flag, {"action": "store_true", "default": None,
                                               "help": text}))
            continue
        extra = {"choices": CHOICES[field.name]} if field.name in CHOICES else {"type": kind}
        options.append((field.name, flag, {**extra, "help": text}))
    return options


def _plain_type(hint: object) -> type:
    """`float` for `float` and `float | None`: the type a command-line value is parsed as."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if args else hint


def config_from_args(args: argparse.Namespace) -> BacktestConfig:
    """The profile's settings with those named on the command line on top."""
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(BacktestConfig)
             if field.name != "profile" and getattr(args, field.name, None) is not None}
    return BacktestConfig.for_profile(args.profile, **given)


def cmd_backtest(args: argparse.Namespace) -> int:
    from engine.backtest import run_backtest, run_orders
    from engine.data.loading import load_prices
    from engine.results.artifacts import claim_output

    inputs = (args.prices, args.orders, args.weights)
    claim_output(args.out, "backtest", inputs, args.force)
    try:
        config = config_from_args(args)
    except ValueError as error:
        raise InputError("command line", str(error)) from None
    prices = load_prices(Path(args.prices), repair_ohlc=True) if args.repair_ohlc else Path(
        args.prices)
    result = (run_orders(prices, Path(args.orders), config) if args.orders
              else run_backtest(prices, Path(args.weights), config))
    out = result.save(args.out, inputs, args.force, release=True)
    metrics = result.metrics
    print(f"{result.fills.height} fills, final equity {metrics['final_equity']:,.2f} "
          f"(total return {metrics['total_return']:+.2%}); wrote {out}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from engine.data.loading import CSV_SUFFIXES, PARQUET_SUFFIXES
    from engine.data.synthetic import MOMENTUM_LOOKBACK, generate_market, momentum_scores
    from engine.research.weights import top_k_weights
    from engine.results.artifacts import write_table

    paths = {"--prices": Path(args.prices), "--weights": Path(args.weights)}
    for flag, path in paths.items():
        if path.suffix.lower() not in PARQUET_SUFFIXES + CSV_SUFFIXES:
            raise InputError(str(path), f"{flag}: unsupported file type '{path.suffix}' (use "
                             ".parquet, .pq, .csv)")
        if path.exists() and not (args.force and path.is_file()):
            what = "file" if path.is_file() else "folder"
            advice = "; pass --force to replace it" if path.is_file() else ""
            raise InputError(str(path), f"{flag}: a {what} is there{advice} (nothing was "
                             "written)")
    if paths["--prices"].resolve() == paths["--weights"].resolve():
        raise InputError(args.prices, "--prices and --weights name the same file")
    if args.days <= MOMENTUM_LOOKBACK:
        raise InputError("command line", f"--days {args.days}: the momentum weights need more "
                         f"than {MOMENTUM_LOOKBACK} days")
    market = generate_market(n_assets=args.assets, n_days=args.days, seed=args.seed)
    weights = top_k_weights(momentum_scores(market), k=args.top, every=args.every)
    write_table(market, args.prices)
    write_table(weights, args.weights)
    print(f"wrote {market.height} bars to {args.prices} and {weights.height} weights "
          f"to {args.weights}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from assets.resources import artifacts_dir
    from pipelines.run import run_main_job
    from pipelines.run_config import user_run_config

    config = user_run_config(args.prices, args.weights, args.signals, args.config)
    return run_main_job(artifacts_dir(args.out), external_fills=args.external_fills,
                        run_config=config,
                        config_name=Path(args.config).name if args.config else "run config")


def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo.story import EVERY, TOP, planted_words, run_demo
    from engine.gap.report import headline

    print(f"tradegap demo: an event-driven engine wired as the seed's was, against a plain "
          f"loop, on generated data ({args.assets} assets × {args.days} days, top {TOP} at "
          f"{1 / TOP:.0%}, rebalanced every {EVERY} days)", flush=True)
    demo = run_demo(args.out, args.assets, args.days, force=args.force)
    out = Path(args.out).resolve()
    stamps = demo.analysis.curves["timestamp"]
    print("planted: " + "; ".join(planted_words(demo.engine.wiring, stamps)))
    print(f"returns: engine {demo.engine.total_return:+,.0%} (its own account), manual loop "
          f"{demo.manual_return:+,.0%}")
    print(f"{demo.analysis.summary['verdict']}: {headline(demo.analysis.summary)}")
    print(f"full report: {out / 'gap_report.md'} (plot: {out / 'gap_report.png'})")
    return 0


def cmd_accept_baseline(args: argparse.Namespace) -> int:
    from assets.groups import BACKTEST_ASSETS
    from assets.resources import ArtifactStore, artifacts_dir

    base = artifacts_dir(args.out)
    store = ArtifactStore(base_dir=str(base))
    for backtest in args.backtests or BACKTEST_ASSETS:
        try:
            folder = store.accept_baseline(backtest)
        except FileNotFoundError as missing:
            raise InputError(str(base), str(missing)) from None
        print(f"accepted {backtest} as its baseline: {folder}")
    return 0


def _gap_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gap", help="explain every difference between two backtests")
    p.add_argument("--a", required=True, help="backtest output folder or fills file (A)")
    p.add_argument("--b", required=True, help="backtest output folder or fills file (B)")
    p.add_argument("--prices", required=True, help="Parquet or CSV: timestamp, asset, OHLCV")
    p.add_argument("--weights", help="target weights both sides traded (enables replay)")
    p.add_argument("--cash", type=float, help="initial cash (default: A's, else 1,000,000)")
    p.add_argument("--out", required=True, help=OUT_HELP)
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--a-profile", choices=list(PROFILES),
                   help="the rules of a bare log as A: this profile with the settings flags "
                        "(default: inferred from A's fills)")
    _log_options(p)
    from engine.logs import FORMATS

    for side in ("a", "b"):
        p.add_argument(f"--{side}-format", choices=[*FORMATS, "columns"],
                       help=f"{side.upper()}'s log format where it differs from --format")
        p.add_argument(f"--{side}-columns",
                       help=f"{side.upper()}'s columns where they differ from --columns")
        p.add_argument(f"--{side}-assets",
                       help=f"{side.upper()}'s symbol map where it differs from --assets")
    for field, flag, options in setting_options():
        if field != "initial_cash":
            p.add_argument(flag, dest=field, **options)


def _log_options(p: argparse.ArgumentParser) -> None:
    """How fill logs are read (`engine.logs`): shared by `gap` and `explain`."""
    from engine.logs import FORMATS
    from engine.logs.options import PARTIALS, PRICE_TOLERANCE

    p.add_argument("--format", choices=[*FORMATS, "columns"],
                   help="the log's format (default: detected from its columns)")
    p.add_argument("--columns", help="read the log column by column: key=Name,... with keys "
                   "timestamp, asset, quantity, side, price, fee (A+B sums columns), order, "
                   "trigger")
    p.add_argument("--assets", help="CSV mapping the log's symbols (first column) to the "
                   "prices' assets (second)")
    p.add_argument("--partials", choices=PARTIALS, default="keep",
                   help="keep every partial fill, or sum those of one order on one bar")
    p.add_argument("--price-tolerance", type=float, default=PRICE_TOLERANCE,
                   help="how far outside its bar's low-high range a fill may be "
                        f"(default {PRICE_TOLERANCE})")


def log_options_from_args(args: argparse.Namespace, side: str | None = None):
    """The log options, with `side`'s own `--a-…`/`--b-…` flags over the shared ones."""
    from engine.logs.options import LogOptions, parse_columns

    def given(name: str):
        own = getattr(args, f"{side}_{name}", None) if side else None
        return own if own is not None else getattr(args, name)

    return LogOptions(format=given("format"), columns=parse_columns(given("columns")),
                      assets=given("assets"), partials=args.partials,
                      price_tolerance=args.price_tolerance)


def cmd_gap(args: argparse.Namespace) -> int:
    from engine.gap.files import run_gap
    from engine.gap.report import headline

    a_config = None
    settings = [f.name for f in dataclasses.fields(BacktestConfig)
                if f.name not in ("profile", "initial_cash")]
    if args.a_profile or any(getattr(args, name, None) is not None for name in settings):
        args.profile = args.a_profile or "tradegap"
        a_config = _config(args)
    analysis = run_gap(args.a, args.b, args.prices, args.out, args.weights, args.cash,
                       log_options_from_args(args, "b"), a_config, args.force,
                       log_options_from_args(args, "a"))
    print(f"{analysis.summary['verdict']}: {headline(analysis.summary)}")
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _explain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain your engine's or broker's fill log against "
                                       "tradegap run on the same inputs")
    p.add_argument("--fills", required=True, help="your log as your engine or broker wrote "
                   "it (vectorbt, backtrader, zipline, nautilus_trader, LEAN, IB Flex, ours)")
    p.add_argument("--prices", required=True, help="Parquet or CSV: timestamp, asset, OHLCV")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--weights", help="the target weights your engine traded")
    what.add_argument("--orders", help="the order table your engine traded")
    what.add_argument("--signals", help="scores (timestamp, asset, score): equal weights on "
                      "the --top best every --every bars")
    p.add_argument("--top", type=positive_int, default=25, help="assets held with --signals")
    p.add_argument("--every", type=positive_int, default=21,
                   help="bars between rebalances (--signals)")
    p.add_argument("--profile", choices=list(PROFILES), default="tradegap",
                   help="the engine whose rules your log should follow")
    p.add_argument("--out", default="out/explain", help="report folder (default: out/explain); "
                   + OUT_HELP)
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    _log_options(p)
    for field, flag, options in setting_options():
        p.add_argument(flag, dest=field, **options)


def cmd_explain(args: argparse.Namespace) -> int:
    from engine.explain import Decisions, run_explain
    from engine.gap.report import headline

    decisions = Decisions(args.weights, args.orders, args.signals, args.top, args.every)
    explained = run_explain(args.fills, args.prices, args.out, decisions, _config(args),
                            log_options_from_args(args), args.force)
    for note in explained.log.notes:
        print(f"note: {note}")
    print(f"read {explained.log.fills.height} fills as {explained.log.format.title}")
    print(headline(explained.analysis.summary))
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _config(args: argparse.Namespace) -> BacktestConfig:
    try:
        return config_from_args(args)
    except ValueError as error:
        raise InputError("command line", str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradegap", description=__doc__.splitlines()[0],
        epilog="exit codes: 0 success, 1 a step failed or a system error (one line), 2 bad "
               "input (one line), 3 an ERROR-severity check failed")
    sub = parser.add_subparsers(dest="command", required=True)
    _backtest_parser(sub)
    _generate_parser(sub)
    _gap_parser(sub)
    _explain_parser(sub)
    where = ("artifacts go to OUT/artifacts (default: $TRADEGAP_ARTIFACTS, else "
             "out/artifacts)")
    run = sub.add_parser(
        "run", help="run the main job on your files or the embedded data",
        description="Run the nightly job in-process. One run at a time per artifact folder "
                    "(a second run waits for the first). Exit 0: every step and ERROR check "
                    "passed; 1: a step failed; 2: bad input; 3: an ERROR check failed.")
    run.add_argument("--out", help=where)
    run.add_argument("--external-fills",
                     help="your engine's or broker's fill log as it wrote it (vectorbt, "
                          "backtrader, zipline, nautilus_trader, LEAN, IB Flex, or timestamp, "
                          "asset, quantity, price, fee; docs/explain.md) to compare with the "
                          "reference")
    run.add_argument("--prices", help="Parquet or CSV: timestamp, asset, OHLCV, rows in any "
                                      "order (default: generated data)")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--weights", help="Parquet or CSV: timestamp, asset, weight (traded "
                                          "instead of the model's top-K)")
    source.add_argument("--signals", help="Parquet or CSV: timestamp, asset, score (ranked "
                                          "instead of the model's scores)")
    run.add_argument("--config", help="run config YAML (ops: ...), as `dagster job execute "
                                      "-c` takes; the flags above win (docs/pipeline.md)")
    demo = sub.add_parser("demo", help="diagnose an event-driven engine wired as the seed's was")
    demo.add_argument("--out", default="out/demo", help="report folder (default: out/demo)")
    demo.add_argument("--assets", type=positive_int, default=500, help="assets (default: 500)")
    demo.add_argument("--days", type=positive_int, default=1260, help="days (default: 1260)")
    demo.add_argument("--force", action="store_true", help=FORCE_HELP)
    accept = sub.add_parser(
        "accept-baseline",
        help="accept the current backtest results as the baselines the nightly run checks")
    accept.add_argument("backtests", nargs="*", help="backtest assets (default: all)")
    accept.add_argument("--out", help=where)
    return parser


COMMANDS = {"backtest": cmd_backtest, "generate": cmd_generate, "run": cmd_run,
            "accept-baseline": cmd_accept_baseline, "gap": cmd_gap, "demo": cmd_demo,
            "explain": cmd_explain}


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that every write in progress
    removes its temporary file or folder on the way out."""


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if in_main else None
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt as stop:
        signum = stop.args[0] if isinstance(stop, Stopped) else signal.SIGINT
        print(f"tradegap: stopped by {signal.Signals(signum).name}; nothing was left half "
              "written", file=sys.stderr)
        return EXIT_SIGNAL + signum
    except InputError as error:
        print(f"tradegap: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OutputReplaced as error:
        print(f"tradegap: error: {error}", file=sys.stderr)
        return EXIT_OUTPUT_REPLACED
    except OSError as error:
        where = error.filename or getattr(args, "out", None) or "?"
        print(f"tradegap: error: {where}: {error.strerror or error}", file=sys.stderr)
        return EXIT_SYSTEM_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
