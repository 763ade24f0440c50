"""The contracts the fake gateway serves: one per tape symbol, specs from backstop's registry.

A tape symbol the instrument registry knows as a future (ES, MES, NQ, MNQ, or a dated
contract such as ESZ5) becomes a CME futures contract: tick and multiplier from the registry,
so contract details agree with backstop's own ``Instrument``; one contract month (a dated
symbol's own, else the first quarterly month (H, M, U, Z) expiring after the tape's first
day), expiring on that month's third Friday. Any other symbol is a USD stock routed SMART with
primary exchange NASDAQ, tick 0.01 unless the instrument gives one. ``conId`` is a checksum of
the symbol, so it is the same in every run.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

from backstop.domain.instruments import Instrument, lookup

MONTH_CODES = "FGHJKMNQUVXZ"
QUARTERLY = (3, 6, 9, 12)


@dataclass(frozen=True, slots=True)
class Spec:
    """One served contract; ``tape_symbol`` is the symbol of its bars in the tape."""

    tape_symbol: str
    con_id: int
    symbol: str  # IB's symbol: the root for futures (ES), the ticker for stocks
    sec_type: str  # "FUT" | "STK"
    expiry: str  # YYYYMMDD for futures, "" for stocks
    exchange: str  # CME | SMART
    primary_exchange: str  # "" for futures, NASDAQ for stocks
    currency: str
    local_symbol: str  # ESZ5 | the ticker
    trading_class: str
    min_tick: float
    multiplier: float

    @property
    def month(self) -> str:
        """The contract month YYYYMM (futures), else ""."""
        return self.expiry[:6]

    @property
    def multiplier_text(self) -> str:
        """The multiplier as IB writes it ('50'; '' for stocks)."""
        if self.sec_type != "FUT":
            return ""
        m = self.multiplier
        return str(int(m)) if float(m).is_integer() else repr(m)

    def contract_fields(self, *, with_exchange: bool = True) -> list[object]:
        """conId .. tradingClass as position, portfolio and order messages carry them.

        ``with_exchange=False`` gives the portfolio layout (primaryExchange, no exchange).
        """
        head: list[object] = [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            0.0,
            "",
            self.multiplier_text,
        ]
        place = [self.exchange] if with_exchange else [self.primary_exchange]
        return [*head, *place, self.currency, self.local_symbol, self.trading_class]


def third_friday(year: int, month: int) -> dt.date:
    """The third Friday of a month: CME equity index futures expire then."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def front_month(first_day: dt.date) -> tuple[int, int]:
    """The first quarterly (year, month) whose expiry is after ``first_day``."""
    year = first_day.year
    for _ in range(3):
        for m in QUARTERLY:
            if third_friday(year, m) > first_day:
                return year, m
        year += 1
    raise AssertionError("unreachable: a quarterly expiry lies within a year")


def _dated(symbol: str, root: str, first_day: dt.date) -> tuple[int, int] | None:
    """(year, month) of a dated symbol such as ESZ5 or ESZ25 (the decade near the tape's)."""
    rest = symbol[len(root) :]
    if not rest or rest[0] not in MONTH_CODES or not rest[1:].isdigit():
        return None
    month = MONTH_CODES.index(rest[0]) + 1
    digits = rest[1:]
    if len(digits) == 1:
        year = first_day.year - first_day.year % 10 + int(digits)
        if year < first_day.year - 1:
            year += 10
    else:
        year = 2000 + int(digits)
    return year, month


def make_spec(symbol: str, first_day: dt.date, overrides: dict[str, Instrument] | None) -> Spec:
    """The contract the fake serves for tape symbol ``symbol``."""
    inst = lookup(symbol, overrides)
    con_id = zlib.crc32(symbol.encode()) % 900_000_000 + 100_000_000
    if not inst.is_future:
        return Spec(
            symbol,
            con_id,
            symbol,
            "STK",
            "",
            "SMART",
            "NASDAQ",
            inst.currency,
            symbol,
            symbol,
            inst.tick_size if inst.tick_size > 0 else 0.01,
            1.0,
        )
    root = next(
        (r for r in sorted(_roots(), key=len, reverse=True) if symbol.startswith(r)), symbol
    )
    year, month = _dated(symbol, root, first_day) or front_month(first_day)
    expiry = third_friday(year, month).strftime("%Y%m%d")
    local = f"{root}{MONTH_CODES[month - 1]}{year % 10}"
    return Spec(
        symbol,
        con_id,
        root,
        "FUT",
        expiry,
        "CME",
        "",
        inst.currency,
        local,
        root,
        inst.tick_size,
        inst.multiplier,
    )


def _roots() -> list[str]:
    from backstop.domain.instruments import REGISTRY

    return [s for s, i in REGISTRY.items() if i.is_future]


def matches(spec: Spec, req: dict[str, str]) -> bool:
    """Whether a request's contract fields name ``spec`` (blank fields match anything).

    ``req`` holds the wire fields conId, symbol, secType, lastTradeDateOrContractMonth,
    multiplier, exchange, currency, localSymbol. An exchange other than the contract's
    (e.g. GLOBEX for a CME future; SMART and the primary exchange both match a stock) does not
    match, as a current gateway refuses it.
    """
    con_id = req.get("conId", "")
    if con_id not in ("", "0") and int(con_id) != spec.con_id:
        return False
    if con_id not in ("", "0"):
        return True
    checks = (
        ("symbol", (spec.symbol, spec.tape_symbol)),
        ("secType", (spec.sec_type,)),
        ("currency", (spec.currency,)),
        ("localSymbol", (spec.local_symbol, spec.tape_symbol)),
        ("multiplier", (spec.multiplier_text, str(spec.multiplier))),
    )
    for key, allowed in checks:
        value = req.get(key, "")
        if value and value not in allowed:
            return False
    exchange = req.get("exchange", "")
    if exchange and exchange not in (spec.exchange, spec.primary_exchange):
        return False
    month = req.get("lastTradeDateOrContractMonth", "")
    return not month or month in (spec.month, spec.expiry)
