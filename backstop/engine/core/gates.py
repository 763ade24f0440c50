"""The gates of the pipeline: advisory gate, trading-state gate, risk gate, order controls.

Each gate returns a reason mask (``ReasonCode`` bits) and never short-circuits the others:
a verdict lists every rule the signal broke, so an incident report can say "blocked by
ADVISORY_WAIT, EXIT_NO_EXPOSURE and MISSING_PROTECTION", not just the first. Limits live in
the profile array ``rp`` (``riskslots``); a NaN slot is a limit that is off.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import (
    ADVICE_NONE,
    ADVICE_WAIT,
    INTENT_EXIT,
    LIMIT,
    R_ADVISORY_OVERRIDDEN,
    R_ADVISORY_WAIT,
    R_BUYING_POWER,
    R_CAPPED_BY_BUYING_POWER,
    R_CAPPED_BY_SECTOR,
    R_CAPPED_BY_SINGLE_NAME,
    R_CONSECUTIVE_LOSS_LOCKOUT,
    R_DAILY_ALLOCATION_CAP,
    R_DAILY_LOSS_CIRCUIT,
    R_DAILY_LOSS_LIMIT,
    R_DATA_QUALITY,
    R_DRAWDOWN_HALT,
    R_KILL_SWITCH_ACTIVE,
    R_MAX_ORDER_NOTIONAL,
    R_MAX_ORDER_QTY,
    R_MAX_POSITIONS,
    R_MAX_TRADES_PER_DAY,
    R_MAX_TRADES_PER_DAY_ACCOUNT,
    R_MIN_EQUITY,
    R_ORDER_RATE_THROTTLE,
    R_OUTSIDE_MARKET_HOURS,
    R_PRICE_COLLAR,
    R_SECTOR_EXPOSURE,
    R_SINGLE_NAME_EXPOSURE,
    R_SIZE_CAPPED,
    R_STALE_SIGNAL,
    R_STATE_REDUCING,
    R_STRATEGY_HALTED,
    ST_HALTED,
    ST_REDUCING,
    STOP,
    STOP_LIMIT,
)
from backstop.engine.core.execution import execution_gate_nb
from backstop.engine.core.guard import (
    AF_DAY_START_EQUITY,
    AF_PEAK_EQUITY,
    AI_CIRCUIT_UNTIL,
    AI_DAY,
    AI_DD_HALTED,
    AI_STATE,
    AI_TRADES_TODAY,
    SF_ALLOC_TODAY,
    SI_CIRCUIT_UNTIL,
    SI_CURSOR,
    SI_CURSOR_PREV,
    SI_CURSOR_TS,
    SI_DD_HALTED,
    SI_LOCKOUT_DAY,
    SI_OWN,
    SI_STATE,
    SI_TRADES_TODAY,
    YF_ADVICE_CONF,
    YI_ADVICE,
    YI_ADVICE_TS,
    YI_ENTRY_STRATEGY,
    note_equity_nb,
    orders_last_minute_nb,
)
from backstop.engine.core.own_pnl import judge_own_nb, strategy_pnl_nb
from backstop.engine.core.riskslots import (
    ADV_BLOCK_ON_WAIT,
    ADV_OVERRIDE_CONVICTION,
    ADV_TTL_S,
    ADV_WAIT_BLOCKS_EXITS,
    N_RISK,
    OR_COLLAR,
    OR_MAX_NOTIONAL,
    OR_MAX_QTY,
    OR_PER_MINUTE,
    RK_BP_MULT,
    RK_DAILY_ALLOC,
    RK_DAILY_LOSS_PCT,
    RK_DAILY_LOSS_USD,
    RK_DRAWDOWN_HALT,
    RK_MARKET_HOURS,
    RK_MAX_POSITIONS,
    RK_MIN_DQ,
    RK_MIN_EQUITY,
    RK_NEW_ONLY,
    RK_SECTOR,
    RK_SHRINK,
    RK_SINGLE_NAME,
    RK_TRADES_DAY,
    RK_TRADES_DAY_ACCT,
)

NS_PER_S = 1_000_000_000


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fresh_advisory_nb(g, rp, ev) -> tuple[int, float]:
    """The advisory that applies to a signal: its own advisory fields, else the latest
    advisory of its symbol within the profile's ``ttl_seconds``. Returns (Advice, conf)."""
    advice = np.int64(ADVICE_NONE)
    conf = np.nan
    s = np.int64(ev.sym)
    if ev.advice != ADVICE_NONE:
        advice = np.int64(ev.advice)
        conf = ev.advice_conf
    elif s >= 0:
        at = g.yi[s, YI_ADVICE_TS]
        if at >= 0 and ev.ts >= at and ev.ts - at <= rp[ADV_TTL_S] * NS_PER_S:
            advice = g.yi[s, YI_ADVICE]
            conf = g.yf[s, YF_ADVICE_CONF]
    return advice, conf


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def advisory_gate_nb(g, rp, ev) -> int:
    """WAIT blocks (ADVISORY_WAIT) unless the profile lets enough conviction override it."""
    advice, _ = fresh_advisory_nb(g, rp, ev)
    reasons = np.int64(0)
    applies = advice == ADVICE_WAIT and rp[ADV_BLOCK_ON_WAIT] != 0.0
    if applies and ev.intent == INTENT_EXIT and rp[ADV_WAIT_BLOCKS_EXITS] == 0.0:
        applies = False
    if applies:
        floor = rp[ADV_OVERRIDE_CONVICTION]
        if floor == floor and ev.conviction == ev.conviction and ev.conviction >= floor:
            reasons = R_ADVISORY_OVERRIDDEN
        else:
            reasons = R_ADVISORY_WAIT
    return reasons


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def state_gate_nb(g, ev) -> int:
    """Trading state: HALTED refuses everything new, REDUCING refuses entries."""
    reasons = 0
    k = ev.strategy
    if g.ai[AI_STATE] == ST_HALTED:
        reasons |= R_KILL_SWITCH_ACTIVE
    if g.si[k, SI_STATE] == ST_HALTED:
        reasons |= R_STRATEGY_HALTED
    if ev.intent != INTENT_EXIT and (
        g.ai[AI_STATE] == ST_REDUCING or g.si[k, SI_STATE] == ST_REDUCING
    ):
        reasons |= R_STATE_REDUCING
    return reasons


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def stale_gate_nb(g, rp, ev) -> int:
    """New signals only: a signal is stale when one sent no later than it carried a source
    id at least as high (the strategy's cursor). Every signal with a source id moves the
    cursor, so a replayed backlog cannot trade after a restart.

    Signals are judged in decision order, which within one bar time is symbol order, not
    the order they were sent (seed 000: mention 318 on AAPL at 14:05:13 is decided before
    317 on NVDA at 14:05:12). So the cursor keeps the signal time of its id, and the highest
    id among signals sent before that time: a signal sent before the cursor's is stale only
    when that earlier id covers it."""
    reasons = np.int64(0)
    if ev.source_id >= 0:
        k = ev.strategy
        cursor = g.si[k, SI_CURSOR]
        before = g.si[k, SI_CURSOR_PREV]
        earlier = ev.ts < g.si[k, SI_CURSOR_TS]  # sent before the cursor's, decided after
        stale = ev.source_id <= before or (ev.source_id <= cursor and not earlier)
        if rp[RK_NEW_ONLY] != 0.0 and stale:
            reasons = R_STALE_SIGNAL
        if ev.source_id > cursor:
            if not earlier:
                g.si[k, SI_CURSOR_PREV] = cursor
            g.si[k, SI_CURSOR] = ev.source_id
            g.si[k, SI_CURSOR_TS] = ev.ts
        elif earlier and ev.source_id > before:
            g.si[k, SI_CURSOR_PREV] = ev.source_id
    return reasons


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def day_loss_nb(g, equity: float) -> float:
    """Today's loss (realized + unrealized) against the day's starting equity; gains < 0."""
    return g.af[AF_DAY_START_EQUITY] - equity


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def risk_gate_nb(g, rp, ev, mkt, equity: float, in_hours: bool, quality: float) -> int:
    """The ordered account/strategy checks of an entry, before it is sized."""
    reasons = 0
    k = ev.strategy
    lim = rp[RK_MIN_DQ]
    if lim == lim and quality < lim:
        reasons |= R_DATA_QUALITY
    if rp[RK_MARKET_HOURS] != 0.0 and not in_hours:
        reasons |= R_OUTSIDE_MARKET_HOURS
    own = g.si[k, SI_OWN] != 0
    note_equity_nb(g, equity)
    if own:  # seed 000: a strategy with its own table is judged on its own P&L
        pnl = strategy_pnl_nb(g, k, mkt.pos, mkt.avg, mkt.mark, mkt.mult)
        loss, start = judge_own_nb(g, rp, k, pnl, ev.ts, ev.bar)
    else:
        loss, start = day_loss_nb(g, equity), g.af[AF_DAY_START_EQUITY]
        lim = rp[RK_DRAWDOWN_HALT]
        peak = g.af[AF_PEAK_EQUITY]
        if lim == lim and g.ai[AI_DD_HALTED] == 0 and equity <= peak * (1.0 - lim):
            g.ai[AI_DD_HALTED] = 1
    lim = rp[RK_DAILY_LOSS_PCT]
    if lim == lim and loss >= lim * start:
        reasons |= R_DAILY_LOSS_LIMIT
    lim = rp[RK_DAILY_LOSS_USD]
    if lim == lim and loss >= lim:
        reasons |= R_DAILY_LOSS_LIMIT
    lim = rp[RK_TRADES_DAY]
    if lim == lim and g.si[k, SI_TRADES_TODAY] >= lim:
        reasons |= R_MAX_TRADES_PER_DAY
    lim = rp[RK_TRADES_DAY_ACCT]
    if lim == lim and g.ai[AI_TRADES_TODAY] >= lim:
        reasons |= R_MAX_TRADES_PER_DAY_ACCOUNT
    lim = rp[RK_MAX_POSITIONS]
    if lim == lim and ev.sym >= 0 and committed_nb(mkt, np.int64(ev.sym)) == 0.0:
        held = 0
        for j in range(len(mkt.pos)):
            # a strategy with its own limits counts its own positions (seed 003)
            if committed_nb(mkt, j) != 0.0 and (not own or g.yi[j, YI_ENTRY_STRATEGY] == k):
                held += 1
        if held >= lim:
            reasons |= R_MAX_POSITIONS
    lim = rp[RK_MIN_EQUITY]
    if lim == lim and equity < lim:
        reasons |= R_MIN_EQUITY
    if g.si[k, SI_LOCKOUT_DAY] == g.ai[AI_DAY] and g.ai[AI_DAY] >= 0:
        reasons |= R_CONSECUTIVE_LOSS_LOCKOUT
    if g.ai[AI_DD_HALTED] != 0 or g.si[k, SI_DD_HALTED] != 0:
        reasons |= R_DRAWDOWN_HALT
    if ev.ts < g.ai[AI_CIRCUIT_UNTIL] or ev.ts < g.si[k, SI_CIRCUIT_UNTIL]:
        reasons |= R_DAILY_LOSS_CIRCUIT
    return reasons | execution_gate_nb(g, rp, k)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def strategy_rp_nb(rp, k: int):
    """The profile block that judges strategy ``k``'s signals: its own when the profile has
    ``[strategy.NAME.*]`` tables (``RiskProfile.array(strategies)``), else the account's."""
    n = np.int64(N_RISK)
    if len(rp) >= n * (k + 2):
        return rp[n * (k + 1) : n * (k + 2)]
    return rp[0:n]


@kernel
def book_wide_nb(rp) -> bool:
    """Whether a check reads the whole book (positions and working entries of every symbol),
    for the account or any strategy's own block."""
    for i in range(0, len(rp), N_RISK):
        a, b = rp[i + RK_MAX_POSITIONS], rp[i + RK_SINGLE_NAME]
        c, d = rp[i + RK_SECTOR], rp[i + RK_BP_MULT]
        if a == a or b == b or c == c or d == d:
            return True
    return False


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def committed_nb(mkt, j: int) -> float:
    """Position of symbol ``j`` once its working entries fill (``pending`` is zero when no
    book-wide check is configured: then the position held)."""
    return mkt.pos[j] + mkt.pending[j]


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exposure_breaks_nb(
    rp,
    qty: float,
    held: float,
    unit: float,
    other_gross: float,
    other_sector: float,
    in_sector: bool,
    equity: float,
) -> int:
    """Which exposure limits an entry of ``qty`` breaks: single name, sector, buying power.

    ``held`` is the committed position of the symbol in the entry's direction (negative when
    opposite), ``unit`` the notional of one unit at the entry price, ``other_*`` the notional
    of every other symbol (in the symbol's sector)."""
    reasons = 0
    name_after = abs(held + qty) * unit
    lim = rp[RK_SINGLE_NAME]
    if lim == lim and name_after > lim * equity:
        reasons |= R_SINGLE_NAME_EXPOSURE
    lim = rp[RK_SECTOR]
    if lim == lim and in_sector and other_sector + name_after > lim * equity:
        reasons |= R_SECTOR_EXPOSURE
    lim = rp[RK_BP_MULT]
    if lim == lim and other_gross + name_after > lim * equity:
        reasons |= R_BUYING_POWER
    return reasons


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exposure_room_nb(lim: float, other: float, held: float, unit: float, equity: float) -> float:
    """The largest quantity whose notional, with ``other``, stays within ``lim`` x equity
    (``abs(held + q) * unit <= lim * equity - other``, solved for q; may be negative)."""
    if lim != lim:
        return np.inf
    return (lim * equity - other) / unit - held


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def exposure_gate_nb(
    g, rp, ev, qty: float, price: float, mkt, equity: float
) -> tuple[int, float, float]:
    """Checks that need the sized order: allocation, single name, sector, buying power.

    Seed 002 ("reduced size due to exposure limits"): with ``risk.shrink_to_fit`` on, an
    entry that would pass the single-name, sector or buying-power limit is shrunk to the
    largest lot-rounded quantity that fits them all (SIZE_CAPPED plus the CAPPED_BY_* code of
    the limit that bound: the one leaving the least room; each of a tie); only when no lot
    fits is it refused with the codes of the limits the requested size broke.

    Returns (reasons, gross notional of the account after the entry, quantity).
    """
    reasons = 0
    s = np.int64(ev.sym)
    k = ev.strategy
    gross = 0.0
    sector_other = 0.0
    my_sector = g.sector[s]
    mark = mkt.mark
    mult = mkt.mult
    sector = g.sector
    for j in range(len(mark)):
        q = committed_nb(mkt, j)
        m = mark[j]
        # without branches: which symbols are held is a coin flip per j, and a mispredicted
        # branch per held symbol was most of this scan on W. A flat or unmarked symbol (or
        # the entry's own symbol, counted apart) adds +0.0, leaving the sums unchanged.
        v = abs(q) * m * mult[j]
        v = v if (q != 0.0) & (m == m) & (j != s) else 0.0
        gross += v
        sector_other += v if (sector[j] == my_sector) & (my_sector >= 0) else 0.0
    unit = price * mkt.mult[s]
    held = committed_nb(mkt, s) * ev.side
    in_sector = my_sector >= 0
    broke = exposure_breaks_nb(rp, qty, held, unit, gross, sector_other, in_sector, equity)
    if broke != 0 and rp[RK_SHRINK] != 0.0 and unit > 0:
        r_name = exposure_room_nb(rp[RK_SINGLE_NAME], 0.0, held, unit, equity)
        r_sector = np.inf
        if in_sector:
            r_sector = exposure_room_nb(rp[RK_SECTOR], sector_other, held, unit, equity)
        r_bp = exposure_room_nb(rp[RK_BP_MULT], gross, held, unit, equity)
        room = min(r_name, r_sector, r_bp)
        lot = mkt.lot[s]
        fit = np.floor(min(room, qty) / lot + 1e-9) * lot
        args = (held, unit, gross, sector_other, in_sector, equity)
        if fit > 0 and exposure_breaks_nb(rp, fit, *args) != 0:
            fit -= lot  # the rounding tolerance let a hair too much through
        if fit > 0 and exposure_breaks_nb(rp, fit, *args) == 0:
            qty = fit
            reasons |= R_SIZE_CAPPED  # with the limit(s) that bound: the least room
            if r_name <= room:
                reasons |= R_CAPPED_BY_SINGLE_NAME
            if r_sector <= room:
                reasons |= R_CAPPED_BY_SECTOR
            if r_bp <= room:
                reasons |= R_CAPPED_BY_BUYING_POWER
            broke = 0
    reasons |= broke
    notional = qty * unit
    lim = rp[RK_DAILY_ALLOC]
    if lim == lim and g.sf[k, SF_ALLOC_TODAY] + notional > lim:
        reasons |= R_DAILY_ALLOCATION_CAP
    return reasons, gross + abs(held + qty) * unit, qty


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def order_controls_nb(g, rp, ev, qty: float, price: float, mark: float, mult: float) -> int:
    """Erroneous-order controls on every order sent: size, notional, collar, rate."""
    reasons = 0
    lim = rp[OR_MAX_QTY]
    if lim == lim and qty > lim:
        reasons |= R_MAX_ORDER_QTY
    lim = rp[OR_MAX_NOTIONAL]
    if lim == lim and price == price and qty * price * mult > lim:
        reasons |= R_MAX_ORDER_NOTIONAL
    lim = rp[OR_COLLAR]
    if lim == lim and ev.intent != INTENT_EXIT and mark == mark and mark > 0:
        level = np.nan
        if ev.otype == LIMIT or ev.otype == STOP_LIMIT:
            level = ev.limit_px
        trigger = ev.entry_stop_px
        is_stop = ev.otype == STOP or ev.otype == STOP_LIMIT
        if is_stop and trigger == trigger and not abs(level - mark) >= abs(trigger - mark):
            level = trigger  # the farther of the two levels is the one the collar judges
        if level == level and abs(level - mark) > lim * mark:
            reasons |= R_PRICE_COLLAR
    lim = rp[OR_PER_MINUTE]
    if lim == lim and orders_last_minute_nb(g, ev.ts) >= lim:
        reasons |= R_ORDER_RATE_THROTTLE
    return reasons
