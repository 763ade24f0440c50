"""Closed enumerations shared by the compiled core and the Python boundary.

Inside numba kernels these are plain ints; the boundary maps them back to these enums, and the
journal stores their names. ``ReasonCode`` members are bit positions so that one verdict can
carry several codes in a single int64 mask.
"""

from __future__ import annotations

from enum import IntEnum
from functools import lru_cache

# Leg numbers, the last part of a client order id: 0 the entry, 1-2 its legs, 3 a scale-in
# add, 4-5 its legs. An exit takes FIRST_FREE_LEG_NO + 2 x the bar row it was decided at; a
# replacement leg pair FIRST_FREE_LEG_NO + 2 x the bar row of the fill it protects (+1 for a
# scale-in add's). A cycle sends at most one exit per bar and its entries fill at most once
# per bar each, so no id is ever reused; and the number depends only on the cycle and the
# bar, never on what other cycles did, so a restarted runner that decides again sends the
# very same ids.
FIRST_FREE_LEG_NO = 6


class Side(IntEnum):
    """Direction of an order or a signal: +1 buys, -1 sells."""

    BUY = 1
    SELL = -1


class Intent(IntEnum):
    """What a signal asks for: open (or add to) a position, or reduce/close one."""

    ENTRY = 0
    EXIT = 1
    STOP_UPDATE = 2  # verdicts of stop updates (EventKind.STOP_UPDATE): move a stop leg


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
    # plain reduce-only exits sent by the exit manager, the kill switch or a strategy column
    TIME_STOP = 5
    EOD_CLOSE = 6
    VOLATILITY_EXIT = 7
    KILL_SWITCH = 8
    MOMENTUM_EXHAUSTION = 9
    CLOUD_FLIP = 10
    THESIS_INVALIDATION = 11


# Exit reasons a signal may name (the ``exit_reason`` column) and the role its order gets.
SIGNAL_EXIT_REASONS: dict[str, OrderRole] = {
    "signal": OrderRole.SIGNAL_EXIT,
    "momentum_exhaustion": OrderRole.MOMENTUM_EXHAUSTION,
    "cloud_flip": OrderRole.CLOUD_FLIP,
    "thesis_invalidation": OrderRole.THESIS_INVALIDATION,
    "time_stop": OrderRole.TIME_STOP,
    "volatility": OrderRole.VOLATILITY_EXIT,
}


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
    ADVISORY_WAIT = 18
    ADVISORY_OVERRIDDEN = 19
    STOP_TOO_WIDE = 20
    MAX_LOSS_CAP = 21
    KILL_SWITCH_ACTIVE = 22
    STATE_REDUCING = 23
    STRATEGY_HALTED = 24
    STRATEGY_QUARANTINED = 25
    DATA_QUALITY = 26
    OUTSIDE_MARKET_HOURS = 27
    DAILY_LOSS_LIMIT = 28
    MAX_TRADES_PER_DAY = 29
    MAX_TRADES_PER_DAY_ACCOUNT = 30
    DAILY_ALLOCATION_CAP = 31
    MAX_POSITIONS = 32
    SINGLE_NAME_EXPOSURE = 33
    SECTOR_EXPOSURE = 34
    MIN_EQUITY = 35
    BUYING_POWER = 36
    CONSECUTIVE_LOSS_LOCKOUT = 37
    DRAWDOWN_HALT = 38
    DAILY_LOSS_CIRCUIT = 39
    STALE_SIGNAL = 40
    MAX_ORDER_QTY = 41
    MAX_ORDER_NOTIONAL = 42
    PRICE_COLLAR = 43
    ORDER_RATE_THROTTLE = 44
    LOW_CONVICTION = 45
    SIZE_CAPPED = 46
    SIZE_THROTTLED = 47
    SHADOW_TRADE = 48
    TARGET_FROM_R = 49
    TIME_STOP_EXIT = 50
    EOD_CLOSE_EXIT = 51
    VOLATILITY_EXIT = 52
    KILL_SWITCH_FLATTEN = 53
    STOP_MOVED = 54
    STOP_NOT_TIGHTER = 55
    STOP_UPDATE_NO_STOP = 56
    BROKER_REJECTED = 57
    CAPPED_BY_SINGLE_NAME = 58
    CAPPED_BY_SECTOR = 59
    CAPPED_BY_BUYING_POWER = 60
    EXECUTION_QUALITY = 61


REASON_MEANINGS: dict[ReasonCode, str] = {
    ReasonCode.SIZING_NO_PRICE: "no price from the signal, the last bar or a quote: cannot size",
    ReasonCode.SIZING_ZERO_QTY: (
        "the sized quantity (an entry's, or an exit's share) rounds to zero lots"
    ),
    ReasonCode.MISSING_PROTECTION: "no usable protective stop and target (0 or too far is none)",
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
    ReasonCode.ADVISORY_WAIT: "an advisory said WAIT for this symbol: the signal is blocked",
    ReasonCode.ADVISORY_OVERRIDDEN: "a WAIT advisory was overridden by the signal's conviction",
    ReasonCode.STOP_TOO_WIDE: "stop farther from the entry than the profile's maximum ticks",
    ReasonCode.MAX_LOSS_CAP: "loss at the stop (with the multiplier) above max_loss_per_trade",
    ReasonCode.KILL_SWITCH_ACTIVE: "the account's kill switch is active (HALTED)",
    ReasonCode.STATE_REDUCING: "trading state is REDUCING: exits only",
    ReasonCode.STRATEGY_HALTED: "the strategy's trading state is HALTED",
    ReasonCode.STRATEGY_QUARANTINED: "the strategy is quarantined by the learning loop",
    ReasonCode.DATA_QUALITY: "the bar's data-quality score is below the profile's minimum",
    ReasonCode.OUTSIDE_MARKET_HOURS: "outside the exchange calendar's trading session",
    ReasonCode.DAILY_LOSS_LIMIT: "today's loss (realized + unrealized) is past the daily limit",
    ReasonCode.MAX_TRADES_PER_DAY: "the strategy has made its maximum entries today",
    ReasonCode.MAX_TRADES_PER_DAY_ACCOUNT: "the account has made its maximum entries today",
    ReasonCode.DAILY_ALLOCATION_CAP: "the entry would pass the strategy's daily allocation",
    ReasonCode.MAX_POSITIONS: "the account already holds the maximum concurrent positions",
    ReasonCode.SINGLE_NAME_EXPOSURE: "the symbol's notional would pass its share of equity",
    ReasonCode.SECTOR_EXPOSURE: "the sector's notional would pass its share of equity",
    ReasonCode.MIN_EQUITY: "equity is below the profile's minimum (e.g. PDT)",
    ReasonCode.BUYING_POWER: "gross notional after the entry would pass the buying power",
    ReasonCode.CONSECUTIVE_LOSS_LOCKOUT: "the strategy lost too many times in a row today",
    ReasonCode.DRAWDOWN_HALT: "drawdown from peak equity halted entries until a manual reset",
    ReasonCode.DAILY_LOSS_CIRCUIT: "the daily-loss circuit paused entries",
    ReasonCode.STALE_SIGNAL: "the signal's source id is not newer than the strategy's cursor",
    ReasonCode.MAX_ORDER_QTY: "order quantity above the erroneous-order maximum",
    ReasonCode.MAX_ORDER_NOTIONAL: "order notional above the erroneous-order maximum",
    ReasonCode.PRICE_COLLAR: "limit or stop price too far from the last price (price collar)",
    ReasonCode.ORDER_RATE_THROTTLE: "too many orders in the last minute: runaway-loop throttle",
    ReasonCode.LOW_CONVICTION: "conviction below the sizer's lowest tier",
    ReasonCode.SIZE_CAPPED: "size cut to the sizer's maximum or to fit an exposure limit",
    ReasonCode.SIZE_THROTTLED: "size reduced: the learning loop throttles this strategy",
    ReasonCode.SHADOW_TRADE: "recorded as a shadow trade of a quarantined strategy",
    ReasonCode.TARGET_FROM_R: "target set at the profile's R-multiple of the stop distance",
    ReasonCode.TIME_STOP_EXIT: "exit sent by the time stop: no progress within the limit",
    ReasonCode.EOD_CLOSE_EXIT: "exit sent by the end-of-day close from the calendar",
    ReasonCode.VOLATILITY_EXIT: "exit sent because a bar's range passed the volatility limit",
    ReasonCode.KILL_SWITCH_FLATTEN: "exit sent by the kill switch's flatten policy",
    ReasonCode.STOP_MOVED: "stop leg moved to the strategy's trailing level (tighter only)",
    ReasonCode.STOP_NOT_TIGHTER: "stop update refused: the level would loosen (or keep) the stop",
    ReasonCode.STOP_UPDATE_NO_STOP: "stop update refused: no position or no stop leg to move",
    ReasonCode.BROKER_REJECTED: "the broker refused the order (its words are in the run log)",
    ReasonCode.CAPPED_BY_SINGLE_NAME: "size shrunk to the most the single-name limit allows",
    ReasonCode.CAPPED_BY_SECTOR: "size shrunk to the most the sector limit allows",
    ReasonCode.CAPPED_BY_BUYING_POWER: "size shrunk to the most the buying power allows",
    ReasonCode.EXECUTION_QUALITY: "the strategy's entry fills slipped past its limit (EQS gate)",
}

# Codes that only change a verdict (it is still approved); every other code refuses it.
MODIFYING_CODES = frozenset(
    {
        ReasonCode.EXIT_CLAMPED_REDUCE_ONLY,
        ReasonCode.ADVISORY_OVERRIDDEN,
        ReasonCode.SIZE_CAPPED,
        ReasonCode.SIZE_THROTTLED,
        ReasonCode.SHADOW_TRADE,
        ReasonCode.TARGET_FROM_R,
        ReasonCode.TIME_STOP_EXIT,
        ReasonCode.EOD_CLOSE_EXIT,
        ReasonCode.VOLATILITY_EXIT,
        ReasonCode.KILL_SWITCH_FLATTEN,
        ReasonCode.STOP_MOVED,
        ReasonCode.CAPPED_BY_SINGLE_NAME,
        ReasonCode.CAPPED_BY_SECTOR,
        ReasonCode.CAPPED_BY_BUYING_POWER,
    }
)


class TradingState(IntEnum):
    """Per account and per strategy: what new orders may do. Every check reads it."""

    ACTIVE = 0
    REDUCING = 1  # exits only
    HALTED = 2  # nothing new; only a manual, journaled reset leaves it


class StrategyHealth(IntEnum):
    """The learning loop's view of a strategy."""

    NORMAL = 0
    THROTTLED = 1  # smaller size under the win-rate floor
    QUARANTINED = 2  # signals become shadow trades until enough shadow wins


class GuardEventKind(IntEnum):
    """State changes of the guardrails, journaled with their cause (the ``guard`` table)."""

    KILL_ACTIVATED = 0
    KILL_RESET = 1
    STATE_CHANGED = 2
    STRATEGY_THROTTLED = 3
    STRATEGY_QUARANTINED = 4
    STRATEGY_REENABLED = 5
    STRATEGY_UNTHROTTLED = 6
    SHADOW_OPENED = 7
    SHADOW_CLOSED = 8
    DRAWDOWN_HALTED = 9
    CIRCUIT_PAUSED = 10
    LOCKOUT = 11
    DAY_STARTED = 12
    CONNECTION_LOST = 13
    CONNECTION_RESTORED = 14
    DESYNC = 15
    MANUAL_RESET = 16


class KillCause(IntEnum):
    """Why the kill switch tripped."""

    NONE = 0
    DAILY_LOSS = 1
    MANUAL = 2
    BROKER_DISCONNECTED = 3
    EQUITY_BELOW_MIN = 4
    CONSECUTIVE_LOSSES = 5
    POSITION_DESYNC = 6
    DATA_QUALITY = 7


class EventKind(IntEnum):
    """What a row of the event table is: signal, advisory, control action or stop update."""

    SIGNAL = 0
    ADVISORY = 1
    CONTROL = 2
    STOP_UPDATE = 3  # a strategy's trailing level for its symbol's stop leg (stop_px)


class Advice(IntEnum):
    """An advisory's verdict on the signals of its symbol."""

    NONE = 0
    GO = 1
    WAIT = 2


class TradeType(IntEnum):
    """Seed 002's trade types: the profile's end-of-day close applies to day trades only."""

    DAY = 0
    SWING = 1
    SCALP = 2


TRADE_TYPE_WORDS = {t.name.lower(): int(t) for t in TradeType}


class ControlAction(IntEnum):
    """Manual or connection actions fed to the pipeline as events (journaled when applied)."""

    KILL = 0  # manual kill-switch toggle on
    RESET = 1  # manual reset of the kill switch, drawdown halt, circuit and lockouts
    SET_REDUCING = 2
    SET_ACTIVE = 3
    CONNECTION_LOST = 4
    CONNECTION_RESTORED = 5
    DESYNC = 6  # reconcile found a position difference it cannot explain
    HALT_STRATEGY = 7
    RESUME_STRATEGY = 8


def reason_names(mask: int) -> list[str]:
    """Unpack a kernel bit mask into reason-code names, in enum order (deterministic)."""
    return list(_reason_names(int(mask)))


@lru_cache(maxsize=4096)
def _reason_names(mask: int) -> tuple[str, ...]:
    return tuple(code.name for code in ReasonCode if mask & (1 << int(code)))
