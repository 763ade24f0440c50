"""The guardrails' state: trading state, kill switch, daily counters, per-strategy learning.

Every check of the pipeline reads this state and every change to it is journaled as a guard
event with its cause (``GuardEventKind``). It is plain arrays in one StructRef so that the
backtest loop and the event driver pass the very same state to the very same kernels.

Layout: account ints ``ai`` and floats ``af``; per strategy ``si``/``sf``; per symbol
``yi``/``yf``; shadow trades of quarantined strategies per (strategy, symbol); a ring of the
last order timestamps for the order-rate throttle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.domain.enums import GuardEventKind, KillCause
from backstop.engine.core import recycle
from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import (
    H_NORMAL,
    H_QUARANTINED,
    H_THROTTLED,
    ST_ACTIVE,
    ST_HALTED,
)
from backstop.engine.core.riskslots import (
    KL_CONSEC,
    KL_LOSS_PCT,
    LN_ENABLED,
    LN_MIN_TRADES,
    LN_Q_LOSSES,
    LN_Q_NEG_EXP,
    LN_REENABLE,
    LN_WIN_FLOOR,
    RK_MAX_CONSEC_LOSSES,
)
from backstop.engine.core.state import (
    StateStruct,
    StateType,
    borrow_nb,
    define_state_proxy,
    state_type,
)

GUARD_EVENT_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("bar", np.int64),
        ("kind", np.int8),  # GuardEventKind
        ("strategy", np.int32),  # -1: the account
        ("sym", np.int32),  # -1: not about one symbol
        ("cause", np.int8),  # KillCause for kill events, else 0
        ("value", np.float64),  # the number that triggered it (loss, equity, count...)
        ("cycle", np.int64),  # trade cycle it concerns, -1 when none
    ]
)

# account ints
AI_DAY = 0  # current session day (-1 before the first bar)
AI_STATE = 1  # TradingState
AI_KILL_CAUSE = 2  # KillCause of the active kill switch
AI_CIRCUIT_UNTIL = 3  # ts until which the daily-loss circuit pauses entries (0 = none)
AI_DD_HALTED = 4  # 1 once the drawdown halt tripped (until a manual reset)
AI_TRADES_TODAY = 5
AI_DISCONNECTED_SINCE = 6  # ts the broker connection was lost, -1 when connected
AI_BIG_LOSSES = 7  # consecutive losses worse than kill.loss_pct (kill trigger)
AI_RING_HEAD = 8
AI_N_EVENTS = 9
AI_N = 10
# account floats
AF_DAY_START_EQUITY = 0
AF_PEAK_EQUITY = 1
AF_START_EQUITY = 2  # the run's starting equity (a strategy's capital unless a key says)
AF_N = 3
# strategy ints
SI_STATE = 0  # TradingState of the strategy
SI_HEALTH = 1  # StrategyHealth
SI_TRADES_TODAY = 2
SI_CONSEC_LOSSES = 3
SI_CONSEC_WINS = 4
SI_LOCKOUT_DAY = 5  # day of the consecutive-loss lockout, -1 when none
SI_N_TRADES = 6
SI_N_WINS = 7
SI_SHADOW_WINS = 8
SI_CURSOR = 9  # highest source id seen (new-signals-only cursor)
SI_OWN = 10  # 1: the profile has [strategy.NAME.*] limits for it (its halts are its own)
SI_DD_HALTED = 11  # 1 once its own drawdown halt tripped (until a manual reset)
SI_CIRCUIT_UNTIL = 12  # ts until which its own daily-loss circuit pauses its entries
SI_ENTRY_FILLS = 13  # entry fills scored for execution quality
SI_CURSOR_TS = 14  # the signal time of the source id that set SI_CURSOR
SI_CURSOR_PREV = 15  # highest source id seen among signals sent before SI_CURSOR_TS
SI_N = 16
# strategy floats
SF_ALLOC_TODAY = 0
SF_SUM_PNL = 1
SF_SLIP_BPS = 2  # average adverse slippage of its entry fills vs the decision price, in bps
SF_REALIZED = 3  # net P&L (after fees) of its closed round trips, never reset
SF_PEAK_PNL = 4  # highest P&L (realized + open) it was judged at: its own drawdown's peak
SF_DAY_START_PNL = 5  # its P&L (realized + open) when the session day started
SF_N = 6
# symbol ints
YI_ADVICE = 0  # Advice of the latest advisory
YI_ADVICE_TS = 1
YI_ENTRY_SIDE = 2  # side of the last approved entry (conflicting-signal check)
YI_N_RANGES = 3  # bars in the running average range
YI_ENTRY_CYCLE = 4  # cycle of the last approved entry
YI_ENTRY_STRATEGY = 5  # strategy of the last approved entry (per-strategy positions)
YI_TRADE_TYPE = 6  # TradeType of the last approved entry (the profile's EOD close: day only)
YI_N = 7
# symbol floats
YF_ADVICE_CONF = 0
YF_RISK_PER_UNIT = 1  # stop distance of the position's entry (R for time stop / R target)
YF_AVG_RANGE = 2
YF_DECISION_PX = 3  # price the last approved entry was decided at (slippage reference)
YF_N = 4
# shadow trades
SH_SIDE = 0
SH_ENTRY = 1
SH_STOP = 2
SH_TARGET = 3
SH_N = 4

RING = 256  # order-rate throttle window capacity (orders per minute above it are refused)
NO_TS = np.int64(-1)

K_KILL_ACTIVATED = np.int8(GuardEventKind.KILL_ACTIVATED)
K_KILL_RESET = np.int8(GuardEventKind.KILL_RESET)
K_STATE_CHANGED = np.int8(GuardEventKind.STATE_CHANGED)
K_THROTTLED = np.int8(GuardEventKind.STRATEGY_THROTTLED)
K_QUARANTINED = np.int8(GuardEventKind.STRATEGY_QUARANTINED)
K_REENABLED = np.int8(GuardEventKind.STRATEGY_REENABLED)
K_UNTHROTTLED = np.int8(GuardEventKind.STRATEGY_UNTHROTTLED)
K_SHADOW_OPENED = np.int8(GuardEventKind.SHADOW_OPENED)
K_SHADOW_CLOSED = np.int8(GuardEventKind.SHADOW_CLOSED)
K_DRAWDOWN_HALTED = np.int8(GuardEventKind.DRAWDOWN_HALTED)
K_CIRCUIT_PAUSED = np.int8(GuardEventKind.CIRCUIT_PAUSED)
K_LOCKOUT = np.int8(GuardEventKind.LOCKOUT)
K_DAY_STARTED = np.int8(GuardEventKind.DAY_STARTED)
K_CONNECTION_LOST = np.int8(GuardEventKind.CONNECTION_LOST)
K_CONNECTION_RESTORED = np.int8(GuardEventKind.CONNECTION_RESTORED)
K_DESYNC = np.int8(GuardEventKind.DESYNC)
K_MANUAL_RESET = np.int8(GuardEventKind.MANUAL_RESET)

CAUSE_NONE = np.int64(KillCause.NONE)
CAUSE_DAILY_LOSS = np.int64(KillCause.DAILY_LOSS)
CAUSE_MANUAL = np.int64(KillCause.MANUAL)
CAUSE_DISCONNECTED = np.int64(KillCause.BROKER_DISCONNECTED)
CAUSE_EQUITY = np.int64(KillCause.EQUITY_BELOW_MIN)
CAUSE_CONSEC_LOSSES = np.int64(KillCause.CONSECUTIVE_LOSSES)
CAUSE_DESYNC = np.int64(KillCause.POSITION_DESYNC)
CAUSE_DATA_QUALITY = np.int64(KillCause.DATA_QUALITY)


GUARD_FIELDS = (
    "ai",
    "af",
    "si",
    "sf",
    "yi",
    "yf",
    "shadow",  # float64[n_strat, n_sym, SH_N]
    "ring",  # int64[RING]: timestamps of the last orders sent
    "sector",  # int64[n_sym]: sector number, -1 when unknown
    "events",  # GUARD_EVENT_DTYPE
    "scratch",  # EVENT_DTYPE[1]: the event record of an engine-initiated exit
)


@state_type
class GuardType(StateType):
    pass


class Guard(StateStruct):
    """All guardrail state of one run (account, strategies, symbols); fields
    ``GUARD_FIELDS``. A StructRef (``backstop.engine.core.state``): the state is passed to a
    dozen kernels per signal, and a NamedTuple of its 11 arrays cost ~120 ns a call."""


define_state_proxy(Guard, GuardType, GUARD_FIELDS)


@kernel
def _make_guard(ai, af, si, sf, yi, yf, shadow, ring, sector, events, scratch):
    return Guard(ai, af, si, sf, yi, yf, shadow, ring, sector, events, scratch)


@kernel
def _set_guard_events(g, events) -> None:
    g.events = borrow_nb(events)


def new_guard(
    n_strat: int,
    n_sym: int,
    initial_equity: float,
    sector: np.ndarray,
    event_dtype: np.dtype,
    source_cursor: int = -1,
    event_cap: int = 64,
) -> Guard:
    """Fresh state: everything ACTIVE, no day seen yet, peak equity = initial equity."""
    ai = np.zeros(AI_N, dtype=np.int64)
    ai[AI_DAY] = -1
    ai[AI_DISCONNECTED_SINCE] = NO_TS
    af = np.zeros(AF_N, dtype=np.float64)
    af[AF_DAY_START_EQUITY] = initial_equity
    af[AF_PEAK_EQUITY] = initial_equity
    af[AF_START_EQUITY] = initial_equity
    si = np.zeros((max(n_strat, 1), SI_N), dtype=np.int64)
    si[:, SI_LOCKOUT_DAY] = -1
    si[:, SI_CURSOR] = source_cursor
    si[:, SI_CURSOR_PREV] = source_cursor
    si[:, SI_CURSOR_TS] = NO_TS
    yi = np.zeros((max(n_sym, 1), YI_N), dtype=np.int64)
    yi[:, YI_ADVICE_TS] = NO_TS
    yi[:, YI_ENTRY_CYCLE] = -1
    yi[:, YI_ENTRY_STRATEGY] = -1
    yf = np.zeros((max(n_sym, 1), YF_N), dtype=np.float64)
    yf[:, YF_RISK_PER_UNIT] = np.nan
    yf[:, YF_DECISION_PX] = np.nan
    arrays = (
        ai,
        af,
        si,
        np.zeros((max(n_strat, 1), SF_N), dtype=np.float64),
        yi,
        yf,
        np.zeros((max(n_strat, 1), max(n_sym, 1), SH_N), dtype=np.float64),
        np.full(RING, NO_TS, dtype=np.int64),
        np.ascontiguousarray(sector, dtype=np.int64),
        recycle.zeros(max(event_cap, 16), GUARD_EVENT_DTYPE),
        np.zeros(1, dtype=event_dtype),
    )
    return Guard.build(_make_guard, arrays)


def grow_guard_events(g: Guard, more: int) -> None:
    """Room for ``more`` guard events, in place (at least doubling the buffer when it grows)."""
    n = int(g.ai[AI_N_EVENTS])
    if n + more <= len(g.events):
        return
    new = recycle.zeros(max(n + more, 2 * len(g.events)), GUARD_EVENT_DTYPE)
    new[:n] = g.events[:n]
    _set_guard_events(g, new)  # every holder of ``g`` sees the grown buffer
    g.replace_held(events=new)


@kernel
def guard_event_room_nb(n_strat: int, n_sym: int) -> int:
    """Most guard events one bar or one event can log: a day roll and kill-switch changes,
    each strategy's learning state twice, and one per symbol."""
    return 16 + 2 * n_strat + n_sym


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def log_guard_nb(g, ts, bar, kind, strategy, sym, cause, value, cycle) -> None:
    """Journal one state change (dropped only if the buffer is full: drivers keep room).

    Inlined where it is called, it only fixes the argument types: numba compiles a kernel
    once per argument-type signature, and a literal -1, an int32 record field or an int value
    would each be a signature of ``_append_guard_event_nb`` (it was compiled 10 times)."""
    _append_guard_event_nb(
        g,
        np.int64(ts),
        np.int64(bar),
        np.int64(kind),
        np.int64(strategy),
        np.int64(sym),
        np.int64(cause),
        np.float64(value),
        np.int64(cycle),
    )


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _append_guard_event_nb(g, ts, bar, kind, strategy, sym, cause, value, cycle) -> None:
    n = g.ai[AI_N_EVENTS]
    if n >= len(g.events):
        return
    g.ai[AI_N_EVENTS] = n + 1
    e = g.events[n]
    e.ts = ts
    e.bar = bar
    e.kind = kind
    e.strategy = strategy
    e.sym = sym
    e.cause = cause
    e.value = value
    e.cycle = cycle


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def kill_activate_nb(g, ts: int, bar: int, cause: int, value: float) -> bool:
    """Trip the kill switch (HALTED) unless already tripped; True when this call tripped it."""
    if g.ai[AI_STATE] == ST_HALTED:
        return False
    g.ai[AI_STATE] = ST_HALTED
    g.ai[AI_KILL_CAUSE] = cause
    log_guard_nb(g, ts, bar, K_KILL_ACTIVATED, -1, -1, cause, value, -1)
    return True


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def manual_reset_nb(g, ts: int, bar: int) -> None:
    """The only way out of HALTED, the drawdown halt, the circuit and today's lockouts."""
    g.ai[AI_STATE] = ST_ACTIVE
    g.ai[AI_KILL_CAUSE] = CAUSE_NONE
    g.ai[AI_DD_HALTED] = 0
    g.af[AF_PEAK_EQUITY] = 0.0  # the drawdown is measured again from the equity after reset
    g.ai[AI_CIRCUIT_UNTIL] = 0
    g.ai[AI_BIG_LOSSES] = 0
    for k in range(g.si.shape[0]):
        g.si[k, SI_LOCKOUT_DAY] = -1
        g.si[k, SI_CONSEC_LOSSES] = 0
        g.si[k, SI_DD_HALTED] = 0
        g.si[k, SI_CIRCUIT_UNTIL] = 0
        g.sf[k, SF_PEAK_PNL] = -np.inf  # its drawdown is measured again from its P&L now
    log_guard_nb(g, ts, bar, K_MANUAL_RESET, -1, -1, 0, 0.0, -1)


@kernel
def start_day_nb(g, day: int, ts: int, bar: int, equity: float) -> bool:
    """Roll the daily counters when a later session day starts; True on a new day (days only
    move forward: a row of another calendar still on the previous day never rolls back)."""
    if day <= g.ai[AI_DAY]:
        return False
    g.ai[AI_DAY] = day
    g.ai[AI_TRADES_TODAY] = 0
    g.af[AF_DAY_START_EQUITY] = equity
    for k in range(g.si.shape[0]):
        g.si[k, SI_TRADES_TODAY] = 0
        g.sf[k, SF_ALLOC_TODAY] = 0.0
    log_guard_nb(g, ts, bar, K_DAY_STARTED, -1, -1, 0, equity, -1)
    return True


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def note_equity_nb(g, equity: float) -> None:
    """Track the peak equity the drawdown halt measures from."""
    if equity > g.af[AF_PEAK_EQUITY]:
        g.af[AF_PEAK_EQUITY] = equity


@kernel
def on_trade_closed_nb(g, rp, strategy: int, sym: int, pnl: float, equity: float, ts, bar, cycle):
    """Book a closed round trip into the strategy's record and the loss-streak triggers.

    Returns a KillCause when the consecutive-loss kill trigger trips, else CAUSE_NONE.
    """
    k = strategy
    g.si[k, SI_N_TRADES] += 1
    g.sf[k, SF_SUM_PNL] += pnl
    if pnl > 0:
        g.si[k, SI_N_WINS] += 1
        g.si[k, SI_CONSEC_WINS] += 1
        g.si[k, SI_CONSEC_LOSSES] = 0
    else:
        g.si[k, SI_CONSEC_LOSSES] += 1
        g.si[k, SI_CONSEC_WINS] = 0
    lim = rp[RK_MAX_CONSEC_LOSSES]
    if lim == lim and g.si[k, SI_CONSEC_LOSSES] >= lim and g.si[k, SI_LOCKOUT_DAY] != g.ai[AI_DAY]:
        g.si[k, SI_LOCKOUT_DAY] = g.ai[AI_DAY]
        log_guard_nb(g, ts, bar, K_LOCKOUT, k, sym, 0, g.si[k, SI_CONSEC_LOSSES], cycle)
    if rp[LN_ENABLED] != 0.0:
        _learn_nb(g, rp, k, sym, ts, bar, cycle)
    cause = CAUSE_NONE
    n_big = rp[KL_CONSEC]
    if n_big == n_big:
        base = equity - pnl  # equity before this loss
        if pnl < 0 and base > 0 and -pnl > rp[KL_LOSS_PCT] * base:
            g.ai[AI_BIG_LOSSES] += 1
        else:
            g.ai[AI_BIG_LOSSES] = 0
        if g.ai[AI_BIG_LOSSES] >= n_big:
            cause = CAUSE_CONSEC_LOSSES
    return cause


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _learn_nb(g, rp, k: int, sym: int, ts, bar, cycle) -> None:
    """Learning loop after a closed trade: quarantine, throttle or lift the throttle."""
    health = g.si[k, SI_HEALTH]
    if health == H_QUARANTINED:
        return
    n = g.si[k, SI_N_TRADES]
    if g.si[k, SI_CONSEC_LOSSES] >= rp[LN_Q_LOSSES] or (
        rp[LN_Q_NEG_EXP] != 0.0 and n >= rp[LN_MIN_TRADES] and g.sf[k, SF_SUM_PNL] < 0
    ):
        g.si[k, SI_HEALTH] = H_QUARANTINED
        g.si[k, SI_SHADOW_WINS] = 0
        log_guard_nb(g, ts, bar, K_QUARANTINED, k, sym, 0, g.sf[k, SF_SUM_PNL] / n, cycle)
        return
    if n >= rp[LN_MIN_TRADES]:
        rate = g.si[k, SI_N_WINS] / n
        if rate < rp[LN_WIN_FLOOR] and health == H_NORMAL:
            g.si[k, SI_HEALTH] = H_THROTTLED
            log_guard_nb(g, ts, bar, K_THROTTLED, k, sym, 0, rate, cycle)
        elif rate >= rp[LN_WIN_FLOOR] and health == H_THROTTLED:
            g.si[k, SI_HEALTH] = H_NORMAL
            log_guard_nb(g, ts, bar, K_UNTHROTTLED, k, sym, 0, rate, cycle)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def open_shadow_nb(g, k: int, s: int, side: int, entry: float, stop: float, target: float, ts, bar):
    """A quarantined strategy's entry becomes a shadow trade: tracked, never sent."""
    if g.shadow[k, s, SH_SIDE] != 0.0 or np.isnan(entry):
        return
    g.shadow[k, s, SH_SIDE] = side
    g.shadow[k, s, SH_ENTRY] = entry
    g.shadow[k, s, SH_STOP] = stop
    g.shadow[k, s, SH_TARGET] = target
    log_guard_nb(g, ts, bar, K_SHADOW_OPENED, k, s, 0, entry, -1)


@kernel
def update_shadows_nb(g, rp, s: int, high: float, low: float, ts, bar) -> None:
    """Settle shadow trades of symbol ``s`` against a bar (stop first, as the fill rules do).

    A shadow trade without levels never settles. Enough shadow wins in a row re-enable the
    strategy; a shadow loss resets the count.
    """
    for k in range(g.shadow.shape[0]):
        side = g.shadow[k, s, SH_SIDE]
        if side == 0.0:
            continue
        stop = g.shadow[k, s, SH_STOP]
        target = g.shadow[k, s, SH_TARGET]
        hit_stop = stop == stop and ((side > 0 and low <= stop) or (side < 0 and high >= stop))
        hit_target = target == target and (
            (side > 0 and high >= target) or (side < 0 and low <= target)
        )
        if not (hit_stop or hit_target):
            continue
        win = hit_target and not hit_stop
        g.shadow[k, s, SH_SIDE] = 0.0
        log_guard_nb(g, ts, bar, K_SHADOW_CLOSED, k, s, 0, 1.0 if win else -1.0, -1)
        if win:
            g.si[k, SI_SHADOW_WINS] += 1
        else:
            g.si[k, SI_SHADOW_WINS] = 0
        if g.si[k, SI_HEALTH] == H_QUARANTINED and g.si[k, SI_SHADOW_WINS] >= rp[LN_REENABLE]:
            g.si[k, SI_HEALTH] = H_NORMAL
            g.si[k, SI_CONSEC_LOSSES] = 0
            g.si[k, SI_N_TRADES] = 0
            g.si[k, SI_N_WINS] = 0
            g.sf[k, SF_SUM_PNL] = 0.0
            log_guard_nb(g, ts, bar, K_REENABLED, k, s, 0, g.si[k, SI_SHADOW_WINS], -1)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def orders_last_minute_nb(g, ts: int) -> int:
    """Orders sent in the 60 s up to ``ts`` (the throttle's count)."""
    n = 0
    for t in g.ring:
        if t != NO_TS and ts - t < 60_000_000_000:
            n += 1
    return n


@kernel
def note_order_nb(g, ts: int) -> None:
    """Remember that an order went out at ``ts``."""
    h = g.ai[AI_RING_HEAD]
    g.ring[h] = ts
    g.ai[AI_RING_HEAD] = (h + 1) % len(g.ring)
