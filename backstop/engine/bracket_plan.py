"""The bracket manager's records and pure helpers: what it must know of a venue, an approved
entry's plan, an entry's protection, and the rounding and command folding it uses.

Kept apart from ``brackets.py`` (the manager's rules) so that module reads as the rules alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from backstop.domain.commands import AmendOrder, OrderCommand
from backstop.domain.enums import OrderType, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class Venue:
    """What the bracket manager must know about a broker: whether it enforces reduce-only
    itself (the simulator does; Alpaca and IB do not, so legs are freed before an exit), and
    whether it takes an entry with its legs attached (Alpaca and IB do; the simulator places
    legs as its own orders when the entry fills, as the backtest loop does)."""

    reduce_only: bool = False
    native_brackets: bool = False


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """An approved entry, as the decision core sized it (absolute prices not yet rounded)."""

    cycle: int
    strategy: int
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.GTC
    limit_price: float = math.nan
    entry_stop_price: float = math.nan
    stop_price: float = math.nan
    target_price: float = math.nan
    stop_pct: float = 0.0
    target_pct: float = 0.0
    trail_pct: float = 0.0
    scale_in_pct: float = 0.0
    ref_price: float = math.nan  # the price the decision used (the scale-in reference)
    ts: int = 0
    bar: int = -1


@dataclass(slots=True)
class Protection:
    """An entry's protective levels and its current legs (client ids, '' when none)."""

    stop: float
    target: float
    stop_pct: float
    target_pct: float
    trail_pct: float
    first_leg_seq: int
    stop_leg: str = ""
    target_leg: str = ""
    native: bool = False  # the legs went out attached to the entry (the broker sizes them)


def levels_known_at_submit(p: EntryPlan) -> bool:
    """Whether the entry's protection is known as prices at submit (so it can go out with
    the entry as native legs): a stop or a target price, nothing priced from the fill."""
    known = p.stop_price == p.stop_price or p.target_price == p.target_price
    return known and p.stop_pct <= 0 and p.target_pct <= 0 and p.trail_pct <= 0


def round_level(price: float | None, tick: float) -> float:
    """Round a price to the tick (no tick or no price: unchanged); nan stays nan."""
    if price is None:
        return math.nan
    if tick <= 0.0 or price != price:
        return price
    return round(round(price / tick) * tick, 10)


def last_amend_wins(commands: list[OrderCommand]) -> list[OrderCommand]:
    """Collapse amends of one order into the last (its reasons joined), kept in its place:
    a leg grown by a fill and then fitted to the position is amended once."""
    last: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for k, c in enumerate(commands):
        if isinstance(c, AmendOrder):
            last[c.client_order_id] = k
            reasons[c.client_order_id] = reasons.get(c.client_order_id, 0) | c.reasons
    out: list[OrderCommand] = []
    for k, c in enumerate(commands):
        if isinstance(c, AmendOrder):
            if last[c.client_order_id] != k:
                continue
            c = replace(c, reasons=reasons[c.client_order_id])
        out.append(c)
    return out
