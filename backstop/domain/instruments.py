"""Instrument specifications: tick, lot, multiplier, currency, sector.

Prices are rounded to the tick when an order is built, never later. Symbols that are neither
registered nor declared by the user get ``Instrument.generic``: backstop does not invent a tick
grid for prices it knows nothing about (synthetic data, research series), so those prices are
left unrounded and the run summary says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backstop.errors import ConfigError, check


@dataclass(frozen=True, slots=True)
class Instrument:
    """What the engine must know about a tradable symbol to price, size and account for it."""

    symbol: str
    tick_size: float = 0.0
    lot_size: float = 1.0
    multiplier: float = 1.0
    currency: str = "USD"
    sector: str = ""
    is_future: bool = False

    def __post_init__(self) -> None:
        check(bool(self.symbol), ConfigError("symbol", "must not be empty"))
        check(
            math.isfinite(self.tick_size) and self.tick_size >= 0,
            ConfigError(f"{self.symbol}.tick_size", f"must be >= 0, got {self.tick_size}"),
        )
        check(
            math.isfinite(self.lot_size) and self.lot_size > 0,
            ConfigError(f"{self.symbol}.lot_size", f"must be > 0, got {self.lot_size}"),
        )
        check(
            math.isfinite(self.multiplier) and self.multiplier > 0,
            ConfigError(f"{self.symbol}.multiplier", f"must be > 0, got {self.multiplier}"),
        )

    @classmethod
    def equity(cls, symbol: str, sector: str = "") -> Instrument:
        """The default US equity spec: one-cent tick, one-share lot, no multiplier."""
        return cls(symbol=symbol, tick_size=0.01, lot_size=1.0, multiplier=1.0, sector=sector)

    @classmethod
    def generic(cls, symbol: str) -> Instrument:
        """A symbol nobody described: unrounded prices, one-unit lots, no multiplier."""
        return cls(symbol=symbol, tick_size=0.0, lot_size=1.0, multiplier=1.0)

    def round_price(self, price: float) -> float:
        """Round a price to the nearest tick (no-op when the tick is unknown)."""
        if self.tick_size <= 0 or not math.isfinite(price):
            return price
        return round(round(price / self.tick_size) * self.tick_size, 10)

    def round_qty(self, qty: float) -> float:
        """Round a quantity down to whole lots (sizing never rounds up past its budget)."""
        return math.floor(qty / self.lot_size + 1e-9) * self.lot_size


def _future(symbol: str, tick: float, multiplier: float) -> Instrument:
    return Instrument(
        symbol=symbol,
        tick_size=tick,
        lot_size=1.0,
        multiplier=multiplier,
        is_future=True,
        sector="index-future",
    )


REGISTRY: dict[str, Instrument] = {
    "ES": _future("ES", 0.25, 50.0),
    "MES": _future("MES", 0.25, 5.0),
    "NQ": _future("NQ", 0.25, 20.0),
    "MNQ": _future("MNQ", 0.25, 2.0),
}

_FUTURE_MONTH_CODES = "FGHJKMNQUVXZ"


def lookup(symbol: str, overrides: dict[str, Instrument] | None = None) -> Instrument:
    """Resolve a symbol: user overrides, then the registry (ESZ5 -> ES), else generic."""
    if overrides is not None:
        check(
            isinstance(overrides, dict),
            ConfigError(
                "instruments", f"expected a dict of Instrument, got {type(overrides).__name__}"
            ),
        )
    if overrides and symbol in overrides:
        spec = overrides[symbol]
        check(
            isinstance(spec, Instrument),
            ConfigError(f"instruments[{symbol!r}]", f"expected an Instrument, got {spec!r}"),
        )
        return spec
    if symbol in REGISTRY:
        return REGISTRY[symbol]
    # Dated futures contracts: root + month code + 1-2 digit year (ESZ5, MNQH26).
    for root, spec in REGISTRY.items():
        rest = symbol[len(root) :]
        if (
            symbol.startswith(root)
            and 2 <= len(rest) <= 3
            and rest[0] in _FUTURE_MONTH_CODES
            and rest[1:].isdigit()
        ):
            return Instrument(
                symbol=symbol,
                tick_size=spec.tick_size,
                lot_size=spec.lot_size,
                multiplier=spec.multiplier,
                currency=spec.currency,
                sector=spec.sector,
                is_future=True,
            )
    return Instrument.generic(symbol)


CME_ZONE = "America/Chicago"


def exchange_zone(symbol: str) -> str | None:
    """The time zone of the exchange a registered symbol trades on, else None.

    The registry holds CME equity index futures (and their dated contracts), which trade in
    ``America/Chicago``. It records no exchange for any other symbol, so backstop does not
    guess one (an equity may be listed in New York, Toronto or Frankfurt).
    """
    return CME_ZONE if lookup(symbol).is_future else None
