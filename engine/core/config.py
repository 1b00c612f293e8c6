"""Backtest settings: fill timing, costs, share mode and cash policy, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from engine.core.profiles import PROFILES, Profile
from engine.core.records import CashPolicy, FillTiming

FILL_TIMINGS = ("next_open", "next_close", "same_close")
SHARE_MODES = ("fractional", "integer")
CASH_POLICIES = ("shrink", "reject", "allow_negative")


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
        return KernelSettings(
            fill=getattr(FillTiming, self.fill), fees=float(self.fees),
            per_share=float(self.per_share), min_fee=float(self.min_fee),
            fixed_fee=float(self.fixed_fee), slippage=float(self.slippage),
            integer=self.integer_shares, cash_policy=getattr(CashPolicy, self.cash_policy),
            allow_short=bool(self.allow_short), leverage=self.leverage,
            submission_check=hooks.submission_check, drop_without_bar=hooks.drop_without_bar,
            sequence=hooks.sequence_code, volume_limit=float(hooks.volume_limit or 0.0),
            decision_sizing=hooks.decision_code, reject_reason=hooks.reject_code,
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
