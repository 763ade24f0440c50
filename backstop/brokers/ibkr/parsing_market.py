"""Pure conversions of IB's market-side objects: contracts and their details (checked
against backstop's instrument registry), positions, account values and historical bars.

The other half of ``parsing`` (orders and fills); ib_async's types never leave these two
modules and ``client``. IB facts: futures trade on CME (never GLOBEX), their multiplier is
text ('50'), the tick is ``ContractDetails.minTick``, and a position's ``avgCost`` is price
x multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
from ib_async import AccountValue, BarData, Contract, ContractDetails, Future, Stock

from backstop.brokers.ibkr.parsing import to_ns
from backstop.data.schema import BAR_SCHEMA
from backstop.domain.events import Account, BrokerPosition
from backstop.domain.instruments import Instrument
from backstop.errors import BackstopError, ConfigError, check

_MONTH_CODES = "FGHJKMNQUVXZ"
_FUTURE_EXCHANGE = "CME"  # never GLOBEX: current gateways refuse it (BROKERS.md)


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What IB's contract details say about a symbol: its contract id, tick and multiplier
    (1 for a stock, whose multiplier IB leaves empty)."""

    symbol: str
    con_id: int
    tick: float
    multiplier: float
    is_future: bool


def contract_for(symbol: str, is_future: bool, months: dict[str, str] | None = None) -> Contract:
    """The IB contract for a backstop symbol: a dated future (``ESZ5``: root ES, local
    symbol ESZ5 on CME), a futures root with its month from ``months`` (``{"ES":
    "202512"}``) or without one (IB must then find exactly one contract, see
    ``contract_spec``), or a stock routed SMART in USD."""
    if not is_future:
        return Stock(symbol, "SMART", "USD")
    months = months or {}
    for cut in (len(symbol) - 2, len(symbol) - 3):
        root, code, year = symbol[:cut], symbol[cut : cut + 1], symbol[cut + 1 :]
        if cut > 0 and code in _MONTH_CODES and year.isdigit() and symbol not in months:
            month = _MONTH_CODES.index(code) + 1
            expiry = f"20{year}{month:02d}" if len(year) == 2 else ""
            return Future(root, expiry, _FUTURE_EXCHANGE, localSymbol=symbol, currency="USD")
    return Future(symbol, months.get(symbol, ""), _FUTURE_EXCHANGE, currency="USD")


def contract_spec(symbol: str, details: list[ContractDetails]) -> ContractSpec:
    """The one contract IB found for ``symbol``; none or several is a ``ConfigError``."""
    check(
        len(details) == 1,
        ConfigError(
            symbol,
            f"IB found {len(details)} contracts for {symbol} (need exactly one: trade a "
            "dated symbol such as ESZ5, or set contract_months for the root)",
        ),
    )
    got = details[0]
    contract = got.contract
    check(contract is not None, ConfigError(symbol, "IB's contract details hold no contract"))
    assert contract is not None
    multiplier = float(contract.multiplier) if contract.multiplier else 1.0
    return ContractSpec(
        symbol=symbol,
        con_id=int(contract.conId),
        tick=float(got.minTick),
        multiplier=multiplier,
        is_future=contract.secType == "FUT",
    )


def check_spec(spec: ContractSpec, inst: Instrument) -> None:
    """IB's tick and multiplier must be backstop's (the registry's, or the user's
    instrument): a mismatch is a ``ConfigError`` naming the symbol, never a guess. An
    instrument with no tick (a symbol backstop does not describe) takes any tick."""
    for what, ib, ours, known in (
        ("minimum tick", spec.tick, inst.tick_size, inst.tick_size > 0),
        ("multiplier", spec.multiplier, inst.multiplier, True),
    ):
        check(
            not known or math.isclose(ib, ours, rel_tol=1e-9, abs_tol=1e-12),
            ConfigError(
                spec.symbol,
                f"IB's {what} is {ib:g} but backstop's instrument says {ours:g}: fix the "
                "instrument (backstop does not guess)",
            ),
        )


def contract_name(contract: Contract) -> str:
    """A backstop name for an IB contract nobody asked about: its local symbol for a future
    (``ESZ5``), its symbol otherwise."""
    if contract.secType == "FUT" and contract.localSymbol:
        return contract.localSymbol
    return contract.symbol


def position(symbol: str, held: float, avg_cost: float, multiplier: float) -> BrokerPosition:
    """A position in backstop's terms: IB's ``avgCost`` is price x multiplier (300000 for
    one ES at 6000), so the per-unit price is ``avgCost / multiplier``."""
    return BrokerPosition(symbol=symbol, qty=float(held), avg_price=avg_cost / multiplier)


def account_values(values: list[AccountValue], account: str) -> Account:
    """Equity (NetLiquidation), cash (TotalCashValue) and buying power of ``account`` ("":
    any), in USD or the account's BASE currency; a missing value is a ``BackstopError``."""
    found: dict[str, float] = {}
    for value in values:
        if account and value.account != account:
            continue
        usable = value.currency in ("USD", "BASE") and value.tag in _ACCOUNT_TAGS
        if usable and (value.tag not in found or value.currency == "USD"):
            found[value.tag] = float(value.value)
    missing = [tag for tag in _ACCOUNT_TAGS if tag not in found]
    if missing:
        raise BackstopError(
            f"IB account {account or '(default)'}: the gateway reported no "
            f"{', '.join(missing)} (account updates not received)"
        )
    return Account(
        equity=found["NetLiquidation"],
        cash=found["TotalCashValue"],
        buying_power=found["BuyingPower"],
    )


_ACCOUNT_TAGS = ("NetLiquidation", "TotalCashValue", "BuyingPower")


# ---------------------------------------------------------------- bars

_BAR_SIZES = {"1Min": "1 min", "5Min": "5 mins", "15Min": "15 mins", "30Min": "30 mins",
              "1Hour": "1 hour", "1Day": "1 day"}  # fmt: skip


def bar_size(timeframe: str) -> str:
    """IB's ``barSizeSetting`` for a backstop timeframe (``1Min`` -> ``1 min``)."""
    size = _BAR_SIZES.get(timeframe)
    check(
        size is not None, ConfigError("timeframe", f"one of {list(_BAR_SIZES)}, got {timeframe!r}")
    )
    return size  # type: ignore[return-value]


def bars_frame(bars: Mapping[str, Sequence[BarData]]) -> pl.DataFrame:
    """IB's bars (``formatDate=2``: open times in UTC) of every symbol as one frame in
    ``BAR_SCHEMA``, ordered by time then symbol."""
    rows: dict[str, list[object]] = {name: [] for name in BAR_SCHEMA.names()}
    for symbol in sorted(bars):
        for bar in bars[symbol]:
            when = bar.date
            if not isinstance(when, datetime):
                when = datetime(when.year, when.month, when.day, tzinfo=UTC)
            rows["ts"].append(to_ns(when))
            rows["symbol"].append(symbol)
            for name in ("open", "high", "low", "close", "volume"):
                rows[name].append(float(getattr(bar, name)))
    return pl.DataFrame(rows, schema=BAR_SCHEMA).sort(["ts", "symbol"], maintain_order=True)
