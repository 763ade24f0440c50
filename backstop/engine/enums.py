"""Closed enumerations shared by the compiled core and the Python boundary.

Inside numba kernels these are plain ints; the boundary maps them back to these enums, and the
journal stores their names. ``ReasonCode`` members are bit positions so that one verdict can
carry several codes in a single int64 mask.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    """Direction of an order or a signal: +1 buys, -1 sells."""

    BUY = 1
    SELL = -1


class Intent(IntEnum):
    """What a signal asks for: open (or add to) a position, or reduce/close one."""

    ENTRY = 0
    EXIT = 1


class OrderType(IntEnum):
    MARKET = 0
    LIMIT = 1
    STOP = 2
    STOP_LIMIT = 3
    TRAILING_STOP = 4


class TimeInForce(IntEnum):
    DAY = 0
    GTC = 1
    IOC = 2


class OrderRole(IntEnum):
    """Why an order exists: the exit reason of a round trip is the role of its closing order."""

    ENTRY = 0
    STOP_LOSS = 1
    TAKE_PROFIT = 2
    SIGNAL_EXIT = 3
    TRAILING = 4


class OrderStatus(IntEnum):
    """Order lifecycle of DESIGN.md; CANCELED, REJECTED, EXPIRED and FILLED are terminal."""

    CREATED = 0
    SUBMITTED = 1
    ACCEPTED = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    CANCELED = 5
    REJECTED = 6
    EXPIRED = 7


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class ReasonCode(IntEnum):
    """Why a verdict refused, clamped or changed something (a bit each in kernels).

    The one-line meaning of each member is ``REASON_MEANINGS[member]``; the README table is
    generated from it so that code and docs cannot drift apart.
    """

    SIZING_NO_PRICE = 0
    SIZING_ZERO_QTY = 1
    MISSING_PROTECTION = 2
    PROTECTION_WRONG_SIDE = 3
    DUPLICATE_POSITION = 4
    CONFLICTING_POSITION = 5
    EXIT_NO_EXPOSURE = 6
    EXIT_CLAMPED_REDUCE_ONLY = 7
    TOO_MANY_WORKING_ORDERS = 8
    UNKNOWN_SYMBOL = 9
    ALREADY_CLOSED = 10
    LEG_CANCELED_POSITION_CLOSED = 11
    LEG_RESIZED_TO_POSITION = 12
    OCO_SIBLING_FILLED = 13
    ORDER_EXPIRED = 14
    EXIT_SIDE_MISMATCH = 15
    NO_BAR_AFTER_SIGNAL = 16
    ENTRY_REMAINDER_CANCELED = 17


REASON_MEANINGS: dict[ReasonCode, str] = {
    ReasonCode.SIZING_NO_PRICE: "no price from the signal, the last bar or a quote: cannot size",
    ReasonCode.SIZING_ZERO_QTY: "the sized quantity rounds to zero lots",
    ReasonCode.MISSING_PROTECTION: "entry without both a protective stop and a target",
    ReasonCode.PROTECTION_WRONG_SIDE: "stop or target on the wrong side of the entry price",
    ReasonCode.DUPLICATE_POSITION: "entry in a symbol where a position is already held",
    ReasonCode.CONFLICTING_POSITION: "entry against the side of the position already held",
    ReasonCode.EXIT_NO_EXPOSURE: "exit while flat: refused so that it cannot open a position",
    ReasonCode.EXIT_CLAMPED_REDUCE_ONLY: "exit quantity clamped to the position held (reduce-only)",
    ReasonCode.TOO_MANY_WORKING_ORDERS: "the symbol already has the most working orders allowed",
    ReasonCode.UNKNOWN_SYMBOL: "signal for a symbol with no bars in this run",
    ReasonCode.ALREADY_CLOSED: "exit for a position whose working exits already close it",
    ReasonCode.LEG_CANCELED_POSITION_CLOSED: "protective leg cancelled: its position is flat",
    ReasonCode.LEG_RESIZED_TO_POSITION: "protective leg shrunk to the smaller position it protects",
    ReasonCode.OCO_SIBLING_FILLED: "bracket leg cancelled because its OCO sibling filled",
    ReasonCode.ORDER_EXPIRED: "order expired by its time in force",
    ReasonCode.EXIT_SIDE_MISMATCH: "exit on the side that would add to the position held",
    ReasonCode.NO_BAR_AFTER_SIGNAL: "signal later than the last bar of its symbol: never acted on",
    ReasonCode.ENTRY_REMAINDER_CANCELED: "entry's unfilled rest cancelled: the trade was exited",
}

# Codes that only change a verdict (it is still approved); every other code refuses it.
MODIFYING_CODES = frozenset({ReasonCode.EXIT_CLAMPED_REDUCE_ONLY})


def reason_names(mask: int) -> list[str]:
    """Unpack a kernel bit mask into reason-code names, in enum order (deterministic)."""
    return [code.name for code in ReasonCode if mask & (1 << int(code))]
