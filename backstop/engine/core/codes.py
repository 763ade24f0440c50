"""The enums as the kernels see them: plain integer codes and reason-code bits.

Derived from ``backstop.domain.enums`` so that kernels and the Python boundary cannot drift
apart. They are numpy scalars, not Python ints, on purpose: numba types a Python int constant
passed as an argument as a literal and compiles one copy of the callee per value.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from backstop.domain.enums import (
    FIRST_FREE_LEG_NO,
    MODIFYING_CODES,
    Advice,
    ControlAction,
    EventKind,
    Intent,
    OrderRole,
    OrderStatus,
    OrderType,
    ReasonCode,
    StrategyHealth,
    TimeInForce,
    TradeType,
    TradingState,
)


def _code(member: IntEnum) -> np.int64:
    return np.int64(int(member))


def _bit(code: ReasonCode) -> np.int64:
    return np.int64(1 << int(code))


FIRST_FREE_LEG = np.int64(FIRST_FREE_LEG_NO)  # leg numbers of exits and replacement legs

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
ROLE_TIME_STOP = _code(OrderRole.TIME_STOP)  # this role and above: plain reduce-only exits
ROLE_EOD_CLOSE = _code(OrderRole.EOD_CLOSE)
ROLE_VOLATILITY_EXIT = _code(OrderRole.VOLATILITY_EXIT)
ROLE_KILL_SWITCH = _code(OrderRole.KILL_SWITCH)

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
INTENT_STOP_UPDATE = _code(Intent.STOP_UPDATE)

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
R_ADVISORY_WAIT = _bit(ReasonCode.ADVISORY_WAIT)
R_ADVISORY_OVERRIDDEN = _bit(ReasonCode.ADVISORY_OVERRIDDEN)
R_STOP_TOO_WIDE = _bit(ReasonCode.STOP_TOO_WIDE)
R_MAX_LOSS_CAP = _bit(ReasonCode.MAX_LOSS_CAP)
R_KILL_SWITCH_ACTIVE = _bit(ReasonCode.KILL_SWITCH_ACTIVE)
R_STATE_REDUCING = _bit(ReasonCode.STATE_REDUCING)
R_STRATEGY_HALTED = _bit(ReasonCode.STRATEGY_HALTED)
R_STRATEGY_QUARANTINED = _bit(ReasonCode.STRATEGY_QUARANTINED)
R_DATA_QUALITY = _bit(ReasonCode.DATA_QUALITY)
R_OUTSIDE_MARKET_HOURS = _bit(ReasonCode.OUTSIDE_MARKET_HOURS)
R_DAILY_LOSS_LIMIT = _bit(ReasonCode.DAILY_LOSS_LIMIT)
R_MAX_TRADES_PER_DAY = _bit(ReasonCode.MAX_TRADES_PER_DAY)
R_MAX_TRADES_PER_DAY_ACCOUNT = _bit(ReasonCode.MAX_TRADES_PER_DAY_ACCOUNT)
R_DAILY_ALLOCATION_CAP = _bit(ReasonCode.DAILY_ALLOCATION_CAP)
R_MAX_POSITIONS = _bit(ReasonCode.MAX_POSITIONS)
R_SINGLE_NAME_EXPOSURE = _bit(ReasonCode.SINGLE_NAME_EXPOSURE)
R_SECTOR_EXPOSURE = _bit(ReasonCode.SECTOR_EXPOSURE)
R_MIN_EQUITY = _bit(ReasonCode.MIN_EQUITY)
R_BUYING_POWER = _bit(ReasonCode.BUYING_POWER)
R_CONSECUTIVE_LOSS_LOCKOUT = _bit(ReasonCode.CONSECUTIVE_LOSS_LOCKOUT)
R_DRAWDOWN_HALT = _bit(ReasonCode.DRAWDOWN_HALT)
R_DAILY_LOSS_CIRCUIT = _bit(ReasonCode.DAILY_LOSS_CIRCUIT)
R_STALE_SIGNAL = _bit(ReasonCode.STALE_SIGNAL)
R_MAX_ORDER_QTY = _bit(ReasonCode.MAX_ORDER_QTY)
R_MAX_ORDER_NOTIONAL = _bit(ReasonCode.MAX_ORDER_NOTIONAL)
R_PRICE_COLLAR = _bit(ReasonCode.PRICE_COLLAR)
R_ORDER_RATE_THROTTLE = _bit(ReasonCode.ORDER_RATE_THROTTLE)
R_LOW_CONVICTION = _bit(ReasonCode.LOW_CONVICTION)
R_SIZE_CAPPED = _bit(ReasonCode.SIZE_CAPPED)
R_SIZE_THROTTLED = _bit(ReasonCode.SIZE_THROTTLED)
R_SHADOW_TRADE = _bit(ReasonCode.SHADOW_TRADE)
R_TARGET_FROM_R = _bit(ReasonCode.TARGET_FROM_R)
R_TIME_STOP_EXIT = _bit(ReasonCode.TIME_STOP_EXIT)
R_EOD_CLOSE_EXIT = _bit(ReasonCode.EOD_CLOSE_EXIT)
R_VOLATILITY_EXIT = _bit(ReasonCode.VOLATILITY_EXIT)
R_KILL_SWITCH_FLATTEN = _bit(ReasonCode.KILL_SWITCH_FLATTEN)
R_STOP_MOVED = _bit(ReasonCode.STOP_MOVED)
R_STOP_NOT_TIGHTER = _bit(ReasonCode.STOP_NOT_TIGHTER)
R_STOP_UPDATE_NO_STOP = _bit(ReasonCode.STOP_UPDATE_NO_STOP)
R_CAPPED_BY_SINGLE_NAME = _bit(ReasonCode.CAPPED_BY_SINGLE_NAME)
R_CAPPED_BY_SECTOR = _bit(ReasonCode.CAPPED_BY_SECTOR)
R_CAPPED_BY_BUYING_POWER = _bit(ReasonCode.CAPPED_BY_BUYING_POWER)
R_EXECUTION_QUALITY = _bit(ReasonCode.EXECUTION_QUALITY)

KIND_SIGNAL = _code(EventKind.SIGNAL)
KIND_ADVISORY = _code(EventKind.ADVISORY)
KIND_CONTROL = _code(EventKind.CONTROL)
KIND_STOP_UPDATE = _code(EventKind.STOP_UPDATE)
ADVICE_NONE = _code(Advice.NONE)
ADVICE_GO = _code(Advice.GO)
ADVICE_WAIT = _code(Advice.WAIT)
CTL_KILL = _code(ControlAction.KILL)
CTL_RESET = _code(ControlAction.RESET)
CTL_SET_REDUCING = _code(ControlAction.SET_REDUCING)
CTL_SET_ACTIVE = _code(ControlAction.SET_ACTIVE)
CTL_CONNECTION_LOST = _code(ControlAction.CONNECTION_LOST)
CTL_CONNECTION_RESTORED = _code(ControlAction.CONNECTION_RESTORED)
CTL_DESYNC = _code(ControlAction.DESYNC)
CTL_HALT_STRATEGY = _code(ControlAction.HALT_STRATEGY)
CTL_RESUME_STRATEGY = _code(ControlAction.RESUME_STRATEGY)
ST_ACTIVE = _code(TradingState.ACTIVE)
ST_REDUCING = _code(TradingState.REDUCING)
ST_HALTED = _code(TradingState.HALTED)
H_NORMAL = _code(StrategyHealth.NORMAL)
H_THROTTLED = _code(StrategyHealth.THROTTLED)
H_QUARANTINED = _code(StrategyHealth.QUARANTINED)
TRADE_DAY = _code(TradeType.DAY)
TRADE_SWING = _code(TradeType.SWING)

# A verdict carrying only these codes is still approved (changed, not refused).
REFUSING_MASK = np.int64(~sum(1 << int(code) for code in MODIFYING_CODES))
