"""The enums as the kernels see them: plain integer codes and reason-code bits.

Derived from ``backstop.engine.enums`` so that kernels and the Python boundary cannot drift
apart. They are numpy scalars, not Python ints, on purpose: numba types a Python int constant
passed as an argument as a literal and compiles one copy of the callee per value.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from backstop.engine.enums import (
    MODIFYING_CODES,
    Intent,
    OrderRole,
    OrderStatus,
    OrderType,
    ReasonCode,
    TimeInForce,
)


def _code(member: IntEnum) -> np.int64:
    return np.int64(int(member))


def _bit(code: ReasonCode) -> np.int64:
    return np.int64(1 << int(code))


MARKET = _code(OrderType.MARKET)
LIMIT = _code(OrderType.LIMIT)
STOP = _code(OrderType.STOP)
STOP_LIMIT = _code(OrderType.STOP_LIMIT)
TRAILING_STOP = _code(OrderType.TRAILING_STOP)

DAY = _code(TimeInForce.DAY)
GTC = _code(TimeInForce.GTC)
IOC = _code(TimeInForce.IOC)

ROLE_ENTRY = _code(OrderRole.ENTRY)
ROLE_STOP_LOSS = _code(OrderRole.STOP_LOSS)
ROLE_TAKE_PROFIT = _code(OrderRole.TAKE_PROFIT)
ROLE_SIGNAL_EXIT = _code(OrderRole.SIGNAL_EXIT)
ROLE_TRAILING = _code(OrderRole.TRAILING)

CREATED = _code(OrderStatus.CREATED)
SUBMITTED = _code(OrderStatus.SUBMITTED)
ACCEPTED = _code(OrderStatus.ACCEPTED)
PARTIALLY_FILLED = _code(OrderStatus.PARTIALLY_FILLED)
FILLED = _code(OrderStatus.FILLED)
CANCELED = _code(OrderStatus.CANCELED)
REJECTED = _code(OrderStatus.REJECTED)
EXPIRED = _code(OrderStatus.EXPIRED)

INTENT_ENTRY = _code(Intent.ENTRY)
INTENT_EXIT = _code(Intent.EXIT)

R_SIZING_NO_PRICE = _bit(ReasonCode.SIZING_NO_PRICE)
R_SIZING_ZERO_QTY = _bit(ReasonCode.SIZING_ZERO_QTY)
R_MISSING_PROTECTION = _bit(ReasonCode.MISSING_PROTECTION)
R_PROTECTION_WRONG_SIDE = _bit(ReasonCode.PROTECTION_WRONG_SIDE)
R_DUPLICATE_POSITION = _bit(ReasonCode.DUPLICATE_POSITION)
R_CONFLICTING_POSITION = _bit(ReasonCode.CONFLICTING_POSITION)
R_EXIT_NO_EXPOSURE = _bit(ReasonCode.EXIT_NO_EXPOSURE)
R_EXIT_CLAMPED = _bit(ReasonCode.EXIT_CLAMPED_REDUCE_ONLY)
R_TOO_MANY_WORKING = _bit(ReasonCode.TOO_MANY_WORKING_ORDERS)
R_UNKNOWN_SYMBOL = _bit(ReasonCode.UNKNOWN_SYMBOL)
R_ALREADY_CLOSED = _bit(ReasonCode.ALREADY_CLOSED)
R_LEG_CANCELED_FLAT = _bit(ReasonCode.LEG_CANCELED_POSITION_CLOSED)
R_LEG_RESIZED = _bit(ReasonCode.LEG_RESIZED_TO_POSITION)
R_OCO_SIBLING_FILLED = _bit(ReasonCode.OCO_SIBLING_FILLED)
R_ORDER_EXPIRED = _bit(ReasonCode.ORDER_EXPIRED)
R_EXIT_SIDE_MISMATCH = _bit(ReasonCode.EXIT_SIDE_MISMATCH)
R_NO_BAR_AFTER_SIGNAL = _bit(ReasonCode.NO_BAR_AFTER_SIGNAL)
R_ENTRY_REMAINDER_CANCELED = _bit(ReasonCode.ENTRY_REMAINDER_CANCELED)

# A verdict carrying only these codes is still approved (changed, not refused).
REFUSING_MASK = np.int64(~sum(1 << int(code) for code in MODIFYING_CODES))
