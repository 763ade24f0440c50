"""What the guardrails do between signals: the day roll, kill-switch triggers, the exit
manager, and the control and advisory events that change state.

These kernels decide; the driver acts. A kill-switch trip or an exit rule returns what to do
(cancel entries, flatten, send an exit with a role), and each driver carries it out through
its own book or Broker, so the backtest loop and the event driver stay the same logic.
"""

from __future__ import annotations

import numpy as np

from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import (
    CTL_CONNECTION_LOST,
    CTL_CONNECTION_RESTORED,
    CTL_DESYNC,
    CTL_HALT_STRATEGY,
    CTL_KILL,
    CTL_RESET,
    CTL_RESUME_STRATEGY,
    CTL_SET_ACTIVE,
    CTL_SET_REDUCING,
    R_EOD_CLOSE_EXIT,
    R_TIME_STOP_EXIT,
    R_VOLATILITY_EXIT,
    ROLE_EOD_CLOSE,
    ROLE_TIME_STOP,
    ROLE_VOLATILITY_EXIT,
    ST_ACTIVE,
    ST_HALTED,
    ST_REDUCING,
    TRADE_DAY,
    TRADE_SWING,
)
from backstop.engine.core.guard import (
    AF_DAY_START_EQUITY,
    AF_PEAK_EQUITY,
    AI_CIRCUIT_UNTIL,
    AI_DD_HALTED,
    AI_DISCONNECTED_SINCE,
    AI_STATE,
    CAUSE_DAILY_LOSS,
    CAUSE_DATA_QUALITY,
    CAUSE_DESYNC,
    CAUSE_DISCONNECTED,
    CAUSE_EQUITY,
    CAUSE_MANUAL,
    CAUSE_NONE,
    K_CIRCUIT_PAUSED,
    K_CONNECTION_LOST,
    K_CONNECTION_RESTORED,
    K_DESYNC,
    K_DRAWDOWN_HALTED,
    K_STATE_CHANGED,
    NO_TS,
    SI_STATE,
    YF_ADVICE_CONF,
    YF_AVG_RANGE,
    YF_RISK_PER_UNIT,
    YI_ADVICE,
    YI_ADVICE_TS,
    YI_N_RANGES,
    YI_TRADE_TYPE,
    kill_activate_nb,
    log_guard_nb,
    manual_reset_nb,
    note_equity_nb,
)
from backstop.engine.core.riskslots import (
    EX_EOD_MIN,
    EX_TIME_STOP_MIN,
    EX_TIME_STOP_R,
    EX_VOL_LOOKBACK,
    EX_VOL_MULT,
    KL_DAILY_LOSS_PCT,
    KL_DAILY_LOSS_USD,
    KL_DISCONNECT_S,
    KL_MIN_DQ,
    KL_MIN_EQUITY,
    LN_ENABLED,
    N_RISK,
    RK_CIRCUIT_HOURS,
    RK_CIRCUIT_PCT,
    RK_DAILY_LOSS_PCT,
    RK_DAILY_LOSS_USD,
    RK_DRAWDOWN_HALT,
)

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S

# what the per-bar supervision needs (bits of ``needs_nb``)
NEED_EQUITY = 1  # account checks that read equity every bar
NEED_EXITS = 2  # the exit manager
NEED_SHADOWS = 4  # shadow trades of quarantined strategies
NEED_DAYS = 8  # daily counters


@kernel
def needs_nb(rp) -> int:
    """Which per-bar work a profile asks for, so that a plain backtest pays nothing for it."""
    flags = 0
    for i in range(0, len(rp), N_RISK):  # the account's block and each strategy's own
        for slot in (KL_DAILY_LOSS_PCT, KL_DAILY_LOSS_USD, KL_MIN_EQUITY, RK_DRAWDOWN_HALT,
                     RK_CIRCUIT_PCT, RK_DAILY_LOSS_PCT, RK_DAILY_LOSS_USD):  # fmt: skip
            if rp[i + slot] == rp[i + slot]:
                flags |= NEED_EQUITY | NEED_DAYS
    if rp[KL_DISCONNECT_S] == rp[KL_DISCONNECT_S] or rp[KL_MIN_DQ] == rp[KL_MIN_DQ]:
        flags |= NEED_EQUITY
    for slot in (EX_TIME_STOP_MIN, EX_EOD_MIN, EX_VOL_MULT):
        if rp[slot] == rp[slot]:
            flags |= NEED_EXITS
    if rp[LN_ENABLED] != 0.0:
        flags |= NEED_SHADOWS
    return flags | NEED_DAYS


@kernel
def account_checks_nb(g, rp, equity: float, quality: float, ts: int, bar: int) -> int:
    """Per-bar account triggers; returns the KillCause that trips the switch now, else NONE.

    Also arms the drawdown halt and the daily-loss circuit, which refuse entries (not kill).
    """
    note_equity_nb(g, equity)
    start = g.af[AF_DAY_START_EQUITY]
    loss = start - equity
    lim = rp[RK_DRAWDOWN_HALT]
    if lim == lim and g.ai[AI_DD_HALTED] == 0 and equity <= g.af[AF_PEAK_EQUITY] * (1.0 - lim):
        g.ai[AI_DD_HALTED] = 1
        log_guard_nb(g, ts, bar, K_DRAWDOWN_HALTED, -1, -1, 0, equity, -1)
    lim = rp[RK_CIRCUIT_PCT]
    if lim == lim and loss >= lim * start and ts >= g.ai[AI_CIRCUIT_UNTIL]:
        g.ai[AI_CIRCUIT_UNTIL] = ts + np.int64(rp[RK_CIRCUIT_HOURS] * 3600.0 * NS_PER_S)
        log_guard_nb(g, ts, bar, K_CIRCUIT_PAUSED, -1, -1, 0, loss, -1)
    if g.ai[AI_STATE] == ST_HALTED:
        return CAUSE_NONE
    lim = rp[KL_DAILY_LOSS_PCT]
    if lim == lim and loss >= lim * start:
        return CAUSE_DAILY_LOSS
    lim = rp[KL_DAILY_LOSS_USD]
    if lim == lim and loss >= lim:
        return CAUSE_DAILY_LOSS
    lim = rp[KL_MIN_EQUITY]
    if lim == lim and equity < lim:
        return CAUSE_EQUITY
    lim = rp[KL_MIN_DQ]
    if lim == lim and quality < lim:
        return CAUSE_DATA_QUALITY
    since = g.ai[AI_DISCONNECTED_SINCE]
    lim = rp[KL_DISCONNECT_S]
    if lim == lim and since != NO_TS and ts - since >= lim * NS_PER_S:
        return CAUSE_DISCONNECTED
    return CAUSE_NONE


@kernel
def value_of_kill_nb(g, cause: int, equity: float, quality: float) -> float:
    """The number a kill event journals beside its cause."""
    if cause == CAUSE_DAILY_LOSS:
        return g.af[AF_DAY_START_EQUITY] - equity
    if cause == CAUSE_DATA_QUALITY:
        return quality
    return equity


@kernel
def exit_rule_nb(
    g, rp, s: int, pos: float, avg: float, mark: float, entry_ts: int, ts: int, close_ns: int,
    high: float, low: float,
) -> tuple[int, int]:  # fmt: skip
    """Exit manager for one symbol after its bar: return (role, reason bit) of the exit to
    send, or (0, 0). Rules in priority order: volatility, end of day (day trades only: the
    ``trade_type`` of the position's latest entry), time stop. Also keeps the symbol's
    running average range up to date (flat or not)."""
    role = 0
    reason = 0
    mult = rp[EX_VOL_MULT]
    if mult == mult:
        rng = high - low
        n = g.yi[s, YI_N_RANGES]
        avg_rng = g.yf[s, YF_AVG_RANGE]
        if pos != 0.0 and n >= rp[EX_VOL_LOOKBACK] and rng > mult * avg_rng:
            role = ROLE_VOLATILITY_EXIT
            reason = R_VOLATILITY_EXIT
        n_eff = min(n + 1, np.int64(rp[EX_VOL_LOOKBACK]))
        g.yf[s, YF_AVG_RANGE] = avg_rng + (rng - avg_rng) / n_eff
        g.yi[s, YI_N_RANGES] = n + 1
    if pos == 0.0 or role != 0:
        return role, reason
    m = rp[EX_EOD_MIN]
    day_trade = g.yi[s, YI_TRADE_TYPE] == TRADE_DAY  # seed 002: swing and scalp trades stay
    if m == m and day_trade and ts >= close_ns - np.int64(m * NS_PER_MIN):
        return ROLE_EOD_CLOSE, R_EOD_CLOSE_EXIT
    m = rp[EX_TIME_STOP_MIN]
    intraday = g.yi[s, YI_TRADE_TYPE] != TRADE_SWING  # seed 002: day (and scalp) trades
    if m == m and intraday and ts - entry_ts >= np.int64(m * NS_PER_MIN):
        side = 1.0 if pos > 0 else -1.0
        move = (mark - avg) * side
        unit = g.yf[s, YF_RISK_PER_UNIT]
        progress = move / unit if unit == unit and unit > 0 else move
        if progress <= rp[EX_TIME_STOP_R]:
            return ROLE_TIME_STOP, R_TIME_STOP_EXIT
    return 0, 0


@kernel
def apply_advisory_nb(g, ev) -> None:
    """Remember an advisory for the signals of its symbol that follow (within the ttl)."""
    s = np.int64(ev.sym)
    if s < 0:
        return
    g.yi[s, YI_ADVICE] = ev.advice
    g.yi[s, YI_ADVICE_TS] = ev.ts
    g.yf[s, YF_ADVICE_CONF] = ev.advice_conf


@kernel
def apply_control_nb(g, rp, ev) -> int:
    """Apply a manual or connection control; return a KillCause when it trips the switch."""
    c = ev.control
    ts = ev.ts
    bar = ev.bar
    if c == CTL_KILL:
        return CAUSE_MANUAL
    if c == CTL_DESYNC:
        log_guard_nb(g, ts, bar, K_DESYNC, -1, ev.sym, 0, ev.qty, -1)
        return CAUSE_DESYNC
    if c == CTL_RESET:
        manual_reset_nb(g, ts, bar)
    elif c in (CTL_SET_REDUCING, CTL_SET_ACTIVE):
        if g.ai[AI_STATE] != ST_HALTED:  # only a RESET leaves HALTED
            g.ai[AI_STATE] = ST_REDUCING if c == CTL_SET_REDUCING else ST_ACTIVE
            log_guard_nb(g, ts, bar, K_STATE_CHANGED, -1, -1, 0, g.ai[AI_STATE], -1)
    elif c in (CTL_HALT_STRATEGY, CTL_RESUME_STRATEGY):
        g.si[ev.strategy, SI_STATE] = ST_HALTED if c == CTL_HALT_STRATEGY else ST_ACTIVE
        log_guard_nb(g, ts, bar, K_STATE_CHANGED, ev.strategy, -1, 0, g.si[ev.strategy, 0], -1)
    elif c == CTL_CONNECTION_LOST:
        if g.ai[AI_DISCONNECTED_SINCE] == NO_TS:
            g.ai[AI_DISCONNECTED_SINCE] = ts
            log_guard_nb(g, ts, bar, K_CONNECTION_LOST, -1, -1, 0, 0.0, -1)
    elif c == CTL_CONNECTION_RESTORED:
        since = g.ai[AI_DISCONNECTED_SINCE]
        if since != NO_TS:
            g.ai[AI_DISCONNECTED_SINCE] = NO_TS
            secs = (ts - since) / NS_PER_S
            log_guard_nb(g, ts, bar, K_CONNECTION_RESTORED, -1, -1, 0, secs, -1)
            lim = rp[KL_DISCONNECT_S]
            if lim == lim and secs >= lim and g.ai[AI_STATE] != ST_HALTED:
                return CAUSE_DISCONNECTED
    return CAUSE_NONE


@kernel
def trip_kill_nb(g, cause: int, ts: int, bar: int, value: float) -> bool:
    """Activate the kill switch for ``cause``; True when this call tripped it."""
    if cause == CAUSE_NONE:
        return False
    return kill_activate_nb(g, ts, bar, cause, value)
