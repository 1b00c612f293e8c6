"""Backtest settings: fill timing, costs, share mode and cash policy, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from engine.core.profiles import PROFILES, Profile

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
