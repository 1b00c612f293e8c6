"""Backtest settings: fill timing, costs, share mode and cash policy, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from engine.core.profiles import PROFILES, Profile
from engine.core.records import CashPolicy, FillTiming, IntrabarPath

FILL_TIMINGS = ("next_open", "next_close", "same_close")
SHARE_MODES = ("fractional", "integer")
CASH_POLICIES = ("shrink", "reject", "allow_negative")
INTRABAR_PATHS = ("nearest", "ohlc", "olhc", "close")
STOP_BASES = ("fill", "close")
TRAIL_SOURCES = ("high_low", "close")
POSITION_RULES = ("stop_loss", "take_profit", "trailing_stop", "max_bars")
PORTFOLIO_RULES = ("max_positions", "max_gross", "max_weight", "halt_drawdown")


@dataclass(frozen=True)
class BacktestConfig:
    """Every setting of one backtest; see docs/semantics.md for what each one does."""

    initial_cash: float = 1_000_000.0
    fill: str = "next_open"
    fees: float = 0.0
    per_share: float = 0.0
    min_fee: float = 0.0
    fixed_fee: float = 0.0
    slippage: float = 0.0
    shares: str = "fractional"
    cash_policy: str = "shrink"
    allow_short: bool = False
    allow_leverage: bool = False
    max_leverage: float = 2.0
    profile: str = "tradegap"
    periods_per_year: int = 252
    # resting orders inside a bar (None: the profile's default)
    intrabar_path: str | None = None
    stop_first: bool | None = None
    stop_base: str | None = None
    trail_source: str | None = None
    # risk rules (0: off): exits per position, fractions of the stop base price ...
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    max_bars: int = 0
    # ... and limits checked when an order is placed
    max_positions: int = 0
    max_gross: float = 0.0
    max_weight: float = 0.0
    halt_drawdown: float = 0.0

    def __post_init__(self) -> None:
        _one_of("fill", self.fill, FILL_TIMINGS)
        _one_of("shares", self.shares, SHARE_MODES)
        _one_of("cash_policy", self.cash_policy, CASH_POLICIES)
        _one_of("profile", self.profile, tuple(PROFILES))
        if not self.initial_cash > 0:
            raise ValueError(f"initial_cash must be positive, got {self.initial_cash}")
        for name in ("fees", "per_share", "min_fee", "fixed_fee", "slippage"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be zero or positive, got {value}")
        if self.slippage >= 1 or self.fees >= 1:
            raise ValueError("fees and slippage are fractions of price and must be below 1")
        if not self.max_leverage >= 1:
            raise ValueError(f"max_leverage must be at least 1, got {self.max_leverage}")
        if self.periods_per_year <= 0:
            raise ValueError("periods_per_year must be positive")
        if self.intrabar_path is not None:
            _one_of("intrabar_path", self.intrabar_path, INTRABAR_PATHS)
        if self.stop_base is not None:
            _one_of("stop_base", self.stop_base, STOP_BASES)
        if self.trail_source is not None:
            _one_of("trail_source", self.trail_source, TRAIL_SOURCES)
        if self.stop_first is not None and not isinstance(self.stop_first, bool):
            raise ValueError(f"stop_first must be True, False or None; got {self.stop_first!r}")
        for name in ("stop_loss", "trailing_stop"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} is a fraction of the stop base price in [0, 1) "
                                 f"(0: off); got {value}")
        for name in ("take_profit", "max_gross", "max_weight"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise ValueError(f"{name} must be a finite fraction, zero or positive "
                                 f"(0: off); got {value}")
        if not 0 <= self.halt_drawdown < 1:
            raise ValueError("halt_drawdown is a drawdown from the equity peak in [0, 1) "
                             f"(0: off); got {self.halt_drawdown}")
        for name in ("max_bars", "max_positions"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f"{name} must be a whole number, zero or positive "
                                 f"(0: off); got {value!r}")
        self.semantics.check(asdict(self))

    @classmethod
    def for_profile(cls, profile: str, **settings: Any) -> BacktestConfig:
        """A config with the settings `profile` implies, then `settings` on top."""
        _one_of("profile", profile, tuple(PROFILES))
        chosen = PROFILES[profile]
        return cls(**{**chosen.requires, **chosen.defaults, **settings, "profile": profile})

    @property
    def semantics(self) -> Profile:
        return PROFILES[self.profile]

    @property
    def integer_shares(self) -> bool:
        return self.shares == "integer"

    @property
    def leverage(self) -> float:
        """L in the buying power `cash left + (L − 1) × book value`: 1 without leverage."""
        return float(self.max_leverage) if self.allow_leverage else 1.0

    def kernel_settings(self) -> KernelSettings:
        """The settings as the compiled kernels read them (codes instead of names)."""
        hooks = self.semantics
        stop_first = hooks.stop_first if self.stop_first is None else self.stop_first
        stop_base = self.stop_base or hooks.stop_base
        trail_source = self.trail_source or hooks.trail_source
        path = self.intrabar_path or hooks.intrabar_path
        return KernelSettings(
            fill=getattr(FillTiming, self.fill), fees=float(self.fees),
            per_share=float(self.per_share), min_fee=float(self.min_fee),
            fixed_fee=float(self.fixed_fee), slippage=float(self.slippage),
            integer=self.integer_shares, cash_policy=getattr(CashPolicy, self.cash_policy),
            allow_short=bool(self.allow_short), leverage=self.leverage,
            submission_check=hooks.submission_check, drop_without_bar=hooks.drop_without_bar,
            sequence=hooks.sequence_code, volume_limit=float(hooks.volume_limit or 0.0),
            decision_sizing=hooks.decision_code, reject_reason=hooks.reject_code,
            intrabar_path=getattr(IntrabarPath, path), tick_size=float(hooks.tick_size),
            stop_first=bool(stop_first), stop_base_close=stop_base == "close",
            trail_close=trail_source == "close" or path == "close",
            stop_slippage=hooks.stop_slippage, bar_ticks=hooks.bar_ticks,
            stop_loss=float(self.stop_loss), take_profit=float(self.take_profit),
            trailing_stop=float(self.trailing_stop), max_bars=int(self.max_bars),
            max_positions=int(self.max_positions), max_gross=float(self.max_gross),
            max_weight=float(self.max_weight), halt_drawdown=float(self.halt_drawdown),
            position_rules=any(getattr(self, name) for name in POSITION_RULES),
            portfolio_rules=any(getattr(self, name) for name in PORTFOLIO_RULES),
        )

    def with_(self, **changes: Any) -> BacktestConfig:
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BacktestConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown backtest settings: {', '.join(unknown)}")
        return cls(**values)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


class KernelSettings(NamedTuple):
    """Every setting a kernel reads, as numbers (see `BacktestConfig.kernel_settings`)."""

    fill: int  # FillTiming
    fees: float
    per_share: float
    min_fee: float
    fixed_fee: float
    slippage: float
    integer: bool
    cash_policy: int  # CashPolicy
    allow_short: bool
    leverage: float  # L: buying power = cash left + (L − 1) × book value
    submission_check: bool  # profile hooks (engine/core/profiles.py)
    drop_without_bar: bool
    sequence: int
    volume_limit: float
    decision_sizing: int
    reject_reason: int  # Reason of a buy that does not fit
    intrabar_path: int  # IntrabarPath
    tick_size: float  # > 0: limit and stop prices rounded to it when placed (zipline's way)
    stop_first: bool  # a stop reached in the bar fills before its OCO sibling
    stop_base_close: bool  # risk rule levels from the entry bar's close (else the fill)
    trail_close: bool  # trailing references follow the close (else the high / low; the
    # close always under the `close` path)
    stop_slippage: bool  # stops fill with slippage, capped at the bar
    bar_ticks: bool  # resting orders see the bar as four prices and fill at their levels
    stop_loss: float  # risk rules, 0: off
    take_profit: float
    trailing_stop: float
    max_bars: int
    max_positions: int
    max_gross: float
    max_weight: float
    halt_drawdown: float
    position_rules: bool  # any of stop_loss, take_profit, trailing_stop, max_bars
    portfolio_rules: bool  # any of max_positions, max_gross, max_weight, halt_drawdown
