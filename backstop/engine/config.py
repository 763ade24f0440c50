"""Run configuration: frozen, validated, with a content hash that keys the run in the journal."""

from __future__ import annotations

import hashlib
import json
import math
import zoneinfo
from dataclasses import asdict, dataclass, fields
from typing import Any

from backstop.engine.core.params import SimParams
from backstop.errors import ConfigError, check

SLIPPAGE_MODELS = {"none": 0, "ticks": 1, "bps": 2}
COMMISSION_MODELS = {"zero": 0, "per_share": 1, "per_contract": 2, "percent": 3}
INTRABAR_POLICIES = {"stop_first": 0, "target_first": 1, "open_proximity": 2}
PERCENT_MAX = 0.05
"""Largest ``commission_rate`` under ``commission=percent``: 5% of notional per fill. A
larger one is a percentage written where the fraction belongs (0.2 meaning 0.2%)."""


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Every assumption of a simulated run, each a named option with a safe default.

    Guardrails (sizing, protection, limits) are not here: they belong to the ``RiskProfile``,
    which a live runner uses unchanged.

    - ``slippage`` / ``slippage_value``: ``none``; ``ticks`` (value ticks against the taker);
      ``bps`` (value basis points). Applies to market and stop fills, never to limit fills.
    - ``commission`` / ``commission_rate`` / ``commission_min``: ``zero``; ``per_share`` (rate
      per share, at least ``commission_min`` per fill); ``per_contract``; ``percent`` (rate as
      a fraction of notional: 0.002 = 0.2%; above ``PERCENT_MAX`` it is refused, as a
      percentage written where a fraction belongs; above 1% the run states a warning).
    - ``max_participation``: largest fraction of a bar's volume that one symbol's fills may
      take; the rest carries forward as a partial fill. 0 turns the cap off.
    - ``intrabar``: which leg fills when a bar touches both stop and target: ``stop_first``
      (conservative default), ``target_first``, ``open_proximity`` (the level nearer the open).
    - ``legs_live_on_entry_bar``: bracket legs of an entry filled at the open can fill on the
      rest of that same bar.
    - ``max_working``: working orders allowed per symbol (more are rejected, with a reason).
    - ``session_tz``: exchange time zone whose calendar day bounds DAY orders.
    """

    initial_cash: float = 100_000.0
    slippage: str = "none"
    slippage_value: float = 0.0
    commission: str = "zero"
    commission_rate: float = 0.0
    commission_min: float = 0.0
    max_participation: float = 0.0
    intrabar: str = "stop_first"
    legs_live_on_entry_bar: bool = True
    max_working: int = 8
    session_tz: str = "America/New_York"

    def __post_init__(self) -> None:
        _choice("slippage", self.slippage, SLIPPAGE_MODELS)
        _choice("commission", self.commission, COMMISSION_MODELS)
        _choice("intrabar", self.intrabar, INTRABAR_POLICIES)
        for key in (
            "initial_cash",
            "slippage_value",
            "commission_rate",
            "commission_min",
        ):
            value = getattr(self, key)
            check(
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0,
                ConfigError(key, f"must be a finite number >= 0, got {value!r}"),
            )
        check(
            self.commission != "percent" or self.commission_rate <= PERCENT_MAX,
            ConfigError(
                "commission_rate",
                f"{self.commission_rate} with commission=percent would be "
                f"{self.commission_rate:.0%} of notional per fill: the rate is a fraction "
                f"(0.002 = 0.2%), at most {PERCENT_MAX}",
            ),
        )
        check(
            isinstance(self.max_participation, int | float)
            and not isinstance(self.max_participation, bool)
            and 0 <= self.max_participation <= 1,
            ConfigError("max_participation", f"must be in [0, 1], got {self.max_participation}"),
        )
        check(
            isinstance(self.session_tz, str) and _is_zone(self.session_tz),
            ConfigError(
                "session_tz",
                f"{self.session_tz!r} is not an IANA time zone (e.g. 'America/New_York')",
            ),
        )
        check(
            isinstance(self.max_working, int) and 2 <= self.max_working <= 256,
            ConfigError("max_working", f"must be an int in [2, 256], got {self.max_working}"),
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str | None = None) -> BacktestConfig:
        """Build from a mapping; an unknown key is an error that names it."""
        known = {f.name for f in fields(cls)}
        for key in values:
            check(
                key in known,
                ConfigError(key, f"unknown option (known: {sorted(known)})", source=source),
            )
        return cls(**values)

    def content_hash(self) -> str:
        """A stable hash of every option: equal configs, equal hashes, across processes."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def sim_params(self) -> SimParams:
        """The numeric view the kernels read."""
        return SimParams(
            slip_kind=SLIPPAGE_MODELS[self.slippage],
            slip_value=float(self.slippage_value),
            fee_kind=COMMISSION_MODELS[self.commission],
            fee_rate=float(self.commission_rate),
            fee_min=float(self.commission_min),
            max_participation=float(self.max_participation),
            intrabar=INTRABAR_POLICIES[self.intrabar],
            legs_live_on_entry_bar=bool(self.legs_live_on_entry_bar),
            max_working=int(self.max_working),
        )


def _is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _choice(key: str, value: str, allowed: dict[str, int]) -> None:
    check(value in allowed, ConfigError(key, f"must be one of {sorted(allowed)}, got {value!r}"))
