"""Record layouts and state containers of the compiled core.

State lives in plain numpy arrays grouped in containers so that numba kernels take a handful
of arguments instead of fifty (vectorbt's trap): the book, the portfolio and the verdicts are
numba StructRefs (one reference per kernel call, see ``state.py``); small read-only groups
(``Instruments``, ``BarContext``) stay NamedTuples. Outputs are structured record arrays that
a thin wrapper turns into polars frames once, at the end of a run.

Capacity: record arrays are allocated with room to spare; a kernel that would run out stops
*before* the bar that could overflow and reports ``STATUS_NEED_ROOM``; the driver grows the
arrays and resumes at that bar. Nothing is ever dropped for lack of space.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from backstop.engine.core import recycle
from backstop.engine.core.ahead import kernel
from backstop.engine.core.state import (
    StateStruct,
    StateType,
    borrow_nb,
    define_state_proxy,
    state_type,
)

ORDER_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("cycle", np.int64),  # trade cycle (the signal's sequence number)
        ("strategy", np.int32),
        ("sym", np.int32),
        ("side", np.int8),  # +1 buy, -1 sell
        ("otype", np.int8),  # OrderType
        ("tif", np.int8),  # TimeInForce
        ("role", np.int8),  # OrderRole
        ("status", np.int8),  # OrderStatus
        ("reduce_only", np.bool_),
        ("leg_no", np.int64),  # client-id suffix: its place in the cycle (domain.orders)
        ("qty", np.float64),
        ("filled", np.float64),
        ("avg_fill", np.float64),
        ("limit_px", np.float64),
        ("stop_px", np.float64),
        ("trail_amt", np.float64),
        ("trail_pct", np.float64),
        ("water", np.float64),  # trailing stops: best price seen since live
        ("leg_stop", np.float64),  # entries: absolute protective levels for the legs
        ("leg_target", np.float64),
        ("leg_stop_pct", np.float64),  # entries: legs as a fraction of the fill price
        ("leg_target_pct", np.float64),
        ("parent", np.int64),
        ("sibling", np.int64),
        ("live_from", np.int64),  # first bar row on which the order can fill
        ("live_session", np.int64),  # session of its first live bar (DAY expiry)
        ("created_ts", np.int64),
        ("created_bar", np.int64),
        ("done_ts", np.int64),
        ("reasons", np.int64),  # ReasonCode mask when cancelled / changed
        ("leg_sl", np.int64),  # entries: ids of their protective legs (-1 until filled)
        ("leg_tp", np.int64),
        ("seen_bar", np.int64),  # last bar row whose intrabar phase evaluated this order
    ]
)

FILL_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("order", np.int64),
        ("cycle", np.int64),
        ("strategy", np.int32),
        ("sym", np.int32),
        ("side", np.int8),
        ("role", np.int8),
        ("ambiguous", np.bool_),  # stop and target both touched in this bar
        ("qty", np.float64),
        ("price", np.float64),
        ("fee", np.float64),
        ("slippage", np.float64),  # price paid away per unit vs the rule's price
        ("ts", np.int64),
        ("bar", np.int64),
        ("alt_stop_first", np.float64),  # exit price under each intrabar ordering
        ("alt_target_first", np.float64),
        ("alt_open_proximity", np.float64),
    ]
)

TRADE_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("cycle", np.int64),
        ("strategy", np.int32),
        ("sym", np.int32),
        ("side", np.int8),  # +1 long, -1 short
        ("exit_role", np.int8),  # OrderRole of the closing order = exit reason
        ("ambiguous", np.bool_),
        ("qty", np.float64),  # largest absolute position of the round trip
        ("entry_px", np.float64),  # volume-weighted
        ("exit_px", np.float64),
        ("pnl", np.float64),  # realized, gross of fees
        ("fees", np.float64),
        ("entry_ts", np.int64),
        ("exit_ts", np.int64),
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("pnl_stop_first", np.float64),  # the round trip re-priced under each ordering
        ("pnl_target_first", np.float64),
        ("pnl_open_proximity", np.float64),
    ]
)

VERDICT_DTYPE = np.dtype(
    [
        ("cycle", np.int64),
        ("event", np.int64),  # row of the signal in the run's event table
        ("ts", np.int64),
        ("bar", np.int64),
        ("strategy", np.int32),
        ("sym", np.int32),
        ("side", np.int8),  # side of the order sent (exits: derived from the position)
        ("intent", np.int8),
        ("approved", np.bool_),
        ("reasons", np.int64),
        ("qty", np.float64),  # quantity sent (0 when refused)
        ("price", np.float64),  # price the decision used (nan when none)
        ("position", np.float64),  # position held when deciding
        ("equity", np.float64),
        ("entry_order", np.int64),  # first order sent, -1 when none
        ("stop_px", np.float64),  # absolute protective levels sent (nan: none or fractional)
        ("target_px", np.float64),
        ("risk", np.float64),  # money lost at the stop for the quantity (nan: no stop)
        ("exposure", np.float64),  # gross notional of the account after the order
        ("conviction", np.float64),
        ("source_id", np.int64),
        ("advice", np.int8),  # Advice that applied (0 none)
        ("advice_conf", np.float64),
    ]
)

# Signal/timer events the drivers feed to the decision functions, sorted by (bar, priority, seq).
EVENT_DTYPE = np.dtype(
    [
        ("bar", np.int64),  # bar row whose close the decision sees
        ("ts", np.int64),
        ("priority", np.int8),  # controls, advisories, exits, then entries at one bar
        ("seq", np.int64),
        ("sym", np.int32),
        ("strategy", np.int32),
        ("side", np.int8),
        ("intent", np.int8),
        ("otype", np.int8),  # entry style: MARKET, LIMIT, STOP or STOP_LIMIT
        ("tif", np.int8),
        ("qty", np.float64),  # nan: let the sizer decide (entries) / whole position (exits)
        ("price", np.float64),  # the signal's own price, nan when it has none
        ("limit_px", np.float64),
        ("entry_stop_px", np.float64),  # stop and stop-limit entries: the trigger price
        ("stop_px", np.float64),
        ("target_px", np.float64),
        ("stop_pct", np.float64),
        ("target_pct", np.float64),
        ("trail_pct", np.float64),  # > 0: the protective leg is a trailing stop
        ("kind", np.int8),  # EventKind: signal, advisory or control
        ("exit_role", np.int8),  # exits: OrderRole naming the exit reason
        ("conviction", np.float64),  # 0..100, nan when unknown
        ("target_dollars", np.float64),  # notional the signal source sized, nan when none
        ("source_id", np.int64),  # e.g. a mention id; -1 when none
        ("advice", np.int8),  # Advice of an advisory (or attached to a signal)
        ("advice_conf", np.float64),
        ("control", np.int8),  # ControlAction of a control event
        ("scale_in_pct", np.float64),  # > 0: half now, half on a pullback this far (fraction)
        ("exit_fraction", np.float64),  # exits: share of the open position to close (0: all)
        ("trade_type", np.int8),  # entries: TradeType (0 day, 1 swing, 2 scalp)
    ]
)

# Counter slots of the ``ctr`` arrays.
N_ORDERS = 0
N_FILLS = 1
N_TRADES = 2
N_VERDICTS = 3
ERROR = 4  # first illegal state transition or invariant breach (0 = none)
ERROR_ARG = 5
VENUE_ONLY = 7  # Book.ctr: 1 when the core sends every order (port v2): no bracket acts here
N_HELD = 6  # Portfolio.ctr: how many symbols hold a position (the head of Portfolio.held)

STATUS_DONE = 0
STATUS_NEED_ROOM = 1  # before the bar's fills: resume with the bar
STATUS_NEED_ROOM_EVENTS = 3  # after the bar's fills, before its next event: resume skipping them
STATUS_ERROR = 2


class Instruments(NamedTuple):
    """Per-symbol contract facts, indexed by the run's symbol number."""

    tick: np.ndarray  # float64, 0 = unknown tick (prices not rounded)
    lot: np.ndarray
    mult: np.ndarray
    is_future: np.ndarray  # bool


class BarContext(NamedTuple):
    """Per bar row: what the calendar and the data-quality score say about it."""

    day: np.ndarray  # int64: session day (daily limits roll when it changes)
    in_hours: np.ndarray  # bool: inside a trading session of the exchange calendar
    close_ns: np.ndarray  # int64: close of the bar's session (or the next one)
    quality: np.ndarray  # float64: data-quality score 0..1 of the bar


def plain_context() -> BarContext:
    """Context for runs whose profile needs no calendar or quality score: one day, always in
    hours, no session close, perfect data. Each array has one element that stands for every
    row (kernels read rows through ``at_nb``), so a 10M-bar run pays nothing for it."""
    return BarContext(
        day=np.zeros(1, dtype=np.int64),
        in_hours=np.ones(1, dtype=np.bool_),
        close_ns=np.full(1, np.iinfo(np.int64).max, dtype=np.int64),
        quality=np.ones(1, dtype=np.float64),
    )


@kernel(inline="always")
def at_nb(arr, i: int):
    """Row ``i`` of a context array, or its only element when it stands for every row."""
    return arr[i] if len(arr) > 1 else arr[0]


# Round-trip accumulator columns of Portfolio.rt (float64[n_sym, RT_N]).
RT_ENTRY_QTY = 0
RT_ENTRY_VAL = 1
RT_EXIT_QTY = 2
RT_EXIT_VAL = 3
RT_MAX_QTY = 4
RT_REALIZED = 5
RT_FEES = 6
RT_ALT_STOP = 7  # realized P&L adjustments under each intrabar ordering
RT_ALT_TARGET = 8
RT_ALT_PROX = 9
RT_N = 10
# Integer columns of Portfolio.rti (int64[n_sym, RTI_N]).
RTI_CYCLE = 0
RTI_STRATEGY = 1
RTI_ENTRY_TS = 2
RTI_ENTRY_BAR = 3
RTI_SIDE = 4
RTI_AMBIGUOUS = 5
RTI_N = 6

# Account slots of Portfolio.acct.
ACCT_CASH = 0
ACCT_FEES = 1
ACCT_REALIZED = 2
ACCT_INITIAL = 3


PORTFOLIO_FIELDS = (
    "pos",  # float64[n_sym]
    "avg",  # float64[n_sym]
    "mark",  # float64[n_sym]: last close seen (nan before the first bar)
    "acct",  # float64[4]
    "rt",
    "rti",
    "trades",
    "ctr",  # int64[8]: N_TRADES slot used
    "mult",  # float64[n_sym]: contract multiplier of each symbol (1 for equities)
    "is_future",  # bool[n_sym]: futures are marked by their P&L, equities by their value
    "held",  # int64[n_sym]: the symbols holding a position, ascending (ctr[N_HELD] of them)
)


@state_type
class PortfolioType(StateType):
    pass


class Portfolio(StateStruct):
    """The engine side: netting positions, average prices, cash, round trips (fields
    ``PORTFOLIO_FIELDS``; a StructRef, see ``backstop.engine.core.state``)."""


define_state_proxy(Portfolio, PortfolioType, PORTFOLIO_FIELDS)


@kernel
def _make_portfolio(pos, avg, mark, acct, rt, rti, trades, ctr, mult, is_future, held):
    return Portfolio(pos, avg, mark, acct, rt, rti, trades, ctr, mult, is_future, held)


@kernel
def _set_portfolio_trades(p, trades) -> None:
    p.trades = borrow_nb(trades)


DECISIONS_FIELDS = ("verdicts", "ctr")  # ctr: int64[8], N_VERDICTS slot used


@state_type
class DecisionsType(StateType):
    pass


class Decisions(StateStruct):
    """Every verdict of the pipeline, approved or not (fields ``DECISIONS_FIELDS``)."""


define_state_proxy(Decisions, DecisionsType, DECISIONS_FIELDS)


@kernel
def _make_decisions(verdicts, ctr):
    return Decisions(verdicts, ctr)


@kernel
def _set_decisions_verdicts(d, verdicts) -> None:
    d.verdicts = borrow_nb(verdicts)


def new_portfolio(
    n_sym: int,
    initial_cash: float,
    trade_cap: int,
    mult: np.ndarray | None = None,
    is_future: np.ndarray | None = None,
) -> Portfolio:
    """Allocate a flat portfolio holding ``initial_cash``; ``mult`` and ``is_future`` are
    the symbols' contract facts (default: equities, multiplier 1). The portfolio carries
    them so that accounting kernels take one struct, not three arrays per call."""
    if mult is None:
        mult = np.ones(n_sym, dtype=np.float64)
    if is_future is None:
        is_future = np.zeros(n_sym, dtype=np.bool_)
    acct = np.zeros(4, dtype=np.float64)
    acct[ACCT_CASH] = initial_cash
    acct[ACCT_INITIAL] = initial_cash
    arrays = (
        np.zeros(n_sym, dtype=np.float64),
        np.zeros(n_sym, dtype=np.float64),
        np.full(n_sym, np.nan, dtype=np.float64),
        acct,
        np.zeros((n_sym, RT_N), dtype=np.float64),
        np.zeros((n_sym, RTI_N), dtype=np.int64),
        recycle.zeros(max(trade_cap, 16), TRADE_DTYPE),
        np.zeros(8, dtype=np.int64),
        np.ascontiguousarray(mult, dtype=np.float64),
        np.ascontiguousarray(is_future, dtype=np.bool_),
        np.zeros(n_sym, dtype=np.int64),
    )
    return Portfolio.build(_make_portfolio, arrays)


def new_decisions(verdict_cap: int) -> Decisions:
    """Allocate room for the run's verdicts."""
    arrays = (recycle.zeros(max(verdict_cap, 16), VERDICT_DTYPE), np.zeros(8, dtype=np.int64))
    return Decisions.build(_make_decisions, arrays)


def grown(arr: np.ndarray, need: int) -> np.ndarray | None:
    """A copy of ``arr`` with room for ``need`` records (at least twice as long), or None
    when it already has the room."""
    if need <= len(arr):
        return None
    new = recycle.zeros(max(need, 2 * len(arr)), arr.dtype)
    new[: len(arr)] = arr
    return new


@kernel
def bar_room_nb(max_working: int, n_sym: int) -> int:
    """Most orders, fills or round trips one bar row can add: every working order of its
    symbol filling or cancelling, a leg pair, and an engine exit per symbol."""
    return 2 * max_working + 2 + n_sym


def grow_trades(pf: Portfolio, more: int) -> None:
    """Room for ``more`` round trips, in place."""
    new = grown(pf.trades, int(pf.ctr[N_TRADES]) + more)
    if new is not None:
        _set_portfolio_trades(pf, new)
        pf.replace_held(trades=new)


def grow_verdicts(dec: Decisions, more: int) -> None:
    """Room for ``more`` verdicts, in place."""
    new = grown(dec.verdicts, int(dec.ctr[N_VERDICTS]) + more)
    if new is not None:
        _set_decisions_verdicts(dec, new)
        dec.replace_held(verdicts=new)
