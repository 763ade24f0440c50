"""The decision of one signal: advisory gate -> entry/exit guard -> risk gate -> sizer ->
exposure gate -> order controls, and the order builder that turns an approval into orders.

Both drivers call these same kernels: the backtest loop for every signal row, the event driver
(live runner, replay, step-by-step backtest) once per signal. They see only numbers the Broker
protocol can give (positions held, working orders, last price, equity) plus the guardrail
state, never whether that broker is simulated.

Every refusal or change is a bit in the verdict's reason mask (``ReasonCode``); nothing returns
"no order" without one, and every gate runs, so a verdict names all the rules a signal broke.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import (  # noqa: F401  (re-exported to the drivers)
    FIRST_FREE_LEG,
    H_QUARANTINED,
    H_THROTTLED,
    INTENT_ENTRY,
    INTENT_EXIT,
    KIND_SIGNAL,
    LIMIT,
    R_ALREADY_CLOSED,
    R_CONFLICTING_POSITION,
    R_DUPLICATE_POSITION,
    R_EXIT_CLAMPED,
    R_EXIT_NO_EXPOSURE,
    R_EXIT_SIDE_MISMATCH,
    R_LOW_CONVICTION,
    R_MAX_LOSS_CAP,
    R_MISSING_PROTECTION,
    R_NO_BAR_AFTER_SIGNAL,
    R_PROTECTION_WRONG_SIDE,
    R_SHADOW_TRADE,
    R_SIZE_CAPPED,
    R_SIZE_THROTTLED,
    R_SIZING_NO_PRICE,
    R_SIZING_ZERO_QTY,
    R_STOP_MOVED,
    R_STOP_NOT_TIGHTER,
    R_STOP_TOO_WIDE,
    R_STOP_UPDATE_NO_STOP,
    R_STRATEGY_QUARANTINED,
    R_TARGET_FROM_R,
    R_UNKNOWN_SYMBOL,
    REFUSING_MASK,
    STOP,
    STOP_LIMIT,
)
from backstop.engine.core.gates import (
    advisory_gate_nb,
    exposure_gate_nb,
    fresh_advisory_nb,
    order_controls_nb,
    risk_gate_nb,
    stale_gate_nb,
    state_gate_nb,
)
from backstop.engine.core.guard import (
    AI_TRADES_TODAY,
    SF_ALLOC_TODAY,
    SI_HEALTH,
    SI_TRADES_TODAY,
    YF_DECISION_PX,
    YF_RISK_PER_UNIT,
    YI_ENTRY_CYCLE,
    YI_ENTRY_SIDE,
    YI_ENTRY_STRATEGY,
    YI_TRADE_TYPE,
    note_order_nb,
    open_shadow_nb,
)
from backstop.engine.core.prices import round_to_tick_nb
from backstop.engine.core.protection import protection_nb
from backstop.engine.core.records import N_VERDICTS, RTI_CYCLE, RTI_STRATEGY
from backstop.engine.core.riskslots import (
    ENT_MAX_LOSS,
    ENT_REQUIRE_PROTECTION,
    LN_THROTTLE,
    RK_ADD_TO_WINNER,
    SZ_CONV_FULL,
    SZ_CONV_HALF,
    SZ_KIND,
    SZ_MAX_QTY,
    SZ_PCT,
    SZ_QTY,
    SZ_RISK_PCT,
    SZ_TARGET_DOLLARS,
)
from backstop.engine.core.state import (
    StateStruct,
    StateType,
    define_state_proxy,
    state_type,
)

SYM_UNKNOWN = np.int64(-1)
SYM_NO_BAR_AFTER = np.int64(-2)
SIZER_FIXED = 0.0
SIZER_PCT_EQUITY = 1.0
SIZER_RISK = 2.0


MARKET_FIELDS = ("pos", "pending", "mark", "avg", "tick", "lot", "mult")


@state_type
class MarketType(StateType):
    pass


class Market(StateStruct):
    """What the decision may know of the account and market, from the book or a Broker.

    Fields (``MARKET_FIELDS``, float64 per symbol): ``pos``, positions held (broker truth);
    ``pending``, the signed unfilled quantity of working entries (zeros when no book-wide
    check is configured, see ``book_wide_nb``): a position being opened counts toward max
    positions and exposure as if it were held; ``mark``, the last price (nan before the
    first); ``avg``, average entry prices; ``tick``, ``lot``, ``mult``. A state struct
    (``backstop.engine.core.state``): kernels borrow it, ``new_market`` builds it.
    """


define_state_proxy(Market, MarketType, MARKET_FIELDS)


@kernel
def _make_market(pos, pending, mark, avg, tick, lot, mult):
    return Market(pos, pending, mark, avg, tick, lot, mult)


def new_market(
    pos: np.ndarray,
    pending: np.ndarray,
    mark: np.ndarray,
    avg: np.ndarray,
    tick: np.ndarray,
    lot: np.ndarray,
    mult: np.ndarray,
) -> Market:
    """A market view over these float64 arrays (one element per symbol), shared, not copied:
    a driver refreshes them in place or passes the book's and portfolio's own arrays."""
    arrays = (pos, pending, mark, avg, tick, lot, mult)
    for name, a in zip(MARKET_FIELDS, arrays, strict=True):
        if a.dtype != np.float64 or a.ndim != 1 or not a.flags.c_contiguous:
            raise TypeError(f"new_market: {name} must be a contiguous 1-D float64 array")
    return Market.build(_make_market, arrays)


@kernel
def decide_stop_move_nb(ev, pos: float, stop_now: float, tick: float):
    """Stop update (a strategy's trailing level): return (reasons, the level to set).

    The level may only tighten the working stop leg of the position held: up for a long,
    down for a short. A level at or below 0 -> MISSING_PROTECTION (seed 004's "non-positive
    protective levels"); no position or no stop leg -> STOP_UPDATE_NO_STOP; a level that
    would loosen (or not move) the stop -> STOP_NOT_TIGHTER. Both drivers call this.
    """
    s = np.int64(ev.sym)
    if s < 0:
        return (R_NO_BAR_AFTER_SIGNAL if s == SYM_NO_BAR_AFTER else R_UNKNOWN_SYMBOL), np.nan
    level = round_to_tick_nb(ev.stop_px, tick)
    if not level > 0:
        return R_MISSING_PROTECTION, level  # a stop at or below 0 protects nothing
    if pos == 0.0 or stop_now != stop_now:
        return R_STOP_UPDATE_NO_STOP, level
    tighter = level > stop_now if pos > 0 else level < stop_now
    if not tighter:
        return R_STOP_NOT_TIGHTER, level
    return R_STOP_MOVED, level


@kernel
def stop_update_decision_nb(reasons: int, pos: float, level: float, leg_left: float):
    """The decision tuple of a stop update, in ``decide_signal_nb``'s layout."""
    side = np.int64(-1 if pos > 0 else 1)
    qty = leg_left if reasons == R_STOP_MOVED else 0.0
    return reasons, side, qty, level, level, np.nan, 0.0, np.nan, np.nan


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def is_protected_nb(ev) -> bool:
    """The signal names both a protective stop (or trail) and a target."""
    has_stop = ev.stop_px == ev.stop_px or ev.stop_pct > 0 or ev.trail_pct > 0
    has_target = ev.target_px == ev.target_px or ev.target_pct > 0
    return has_stop and has_target


@kernel
def decide_exit_nb(ev, pos: float, exit_working: float, rp, lot: float) -> tuple[int, int, float]:
    """Reduce-only exit guard: return (reasons, side to send, quantity to send).

    Side and size come from the position held, never from the signal: flat -> refused (and,
    since such an order could only open a position, judged as the unprotected entry it would
    be); the signal's side must be the one that reduces; the quantity is clamped to what is
    held and not already being closed by working exits. A partial exit (``exit_fraction`` in
    (0, 1)) closes that share of what is left to close, rounded half-down to ``lot``: one
    that rounds to no lot is refused (SIZING_ZERO_QTY), never sent as nothing.
    """
    reasons = np.int64(0)
    side = np.int64(0)
    qty = 0.0
    derived = np.int64(-1 if pos > 0 else 1)
    available = abs(pos) - exit_working
    if pos == 0.0:
        reasons = R_EXIT_NO_EXPOSURE
        if rp[ENT_REQUIRE_PROTECTION] != 0.0 and not is_protected_nb(ev):
            reasons |= R_MISSING_PROTECTION
    elif ev.side != 0 and ev.side != derived:
        reasons = R_EXIT_SIDE_MISMATCH
    elif available <= 1e-12:
        reasons = R_ALREADY_CLOSED
    else:
        side = derived
        qty = ev.qty
        if np.isnan(ev.qty):
            qty = available
            f = ev.exit_fraction
            if f > 0.0 and f < 1.0:
                qty = partial_exit_qty_nb(f, available, lot)
                if qty <= 0.0:
                    reasons = R_SIZING_ZERO_QTY
                    side = np.int64(0)
                    qty = 0.0
                elif qty > available + 1e-12:  # a position of part lots: never past it
                    reasons = R_EXIT_CLAMPED
                    qty = available
        elif ev.qty > available + 1e-12:
            reasons = R_EXIT_CLAMPED
            qty = available
    return reasons, side, qty


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def partial_exit_qty_nb(fraction: float, available: float, lot: float) -> float:
    """``fraction`` of ``available`` in whole lots, an exact half lot rounding down (1.5
    lots -> 1, 1.6 -> 2): a scale-out never closes half a lot or more beyond what it asked."""
    n = np.ceil(fraction * available / lot - 0.5 - 1e-9)
    return max(n, 0.0) * lot


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def size_entry_nb(
    g, rp, ev, price: float, dist: float, equity: float, lot: float, mult: float
) -> tuple[int, float]:
    """Sizer: the signal's target_dollars, else its qty, else the profile's sizer; then the
    conviction tier, the learning throttle, the cap and lot rounding. Never silently zero."""
    reasons = np.int64(0)
    refused = np.int64(0)  # a refusal ends sizing: that code alone, quantity 0
    kind = rp[SZ_KIND]
    by_sizer = False
    qty = 0.0
    if rp[SZ_TARGET_DOLLARS] != 0.0 and ev.target_dollars == ev.target_dollars:
        if price != price or price <= 0:
            refused = R_SIZING_NO_PRICE
        else:
            qty = ev.target_dollars / (price * mult)
    elif ev.qty == ev.qty:
        qty = ev.qty
    elif kind == SIZER_FIXED:
        qty = rp[SZ_QTY]
        by_sizer = True
    elif kind == SIZER_PCT_EQUITY:
        if price != price or price <= 0:
            refused = R_SIZING_NO_PRICE
        else:
            qty = equity * rp[SZ_PCT] / (price * mult)
            by_sizer = True
    elif dist != dist:
        # risk sizing needs a stop distance: without a price there is none to derive
        refused = R_SIZING_NO_PRICE if price != price else R_MISSING_PROTECTION
    elif dist <= 0:
        refused = R_SIZING_ZERO_QTY
    else:
        qty = equity * rp[SZ_RISK_PCT] / (dist * mult)
        by_sizer = True
    full = rp[SZ_CONV_FULL]
    if (
        refused == 0
        and by_sizer
        and full == full
        and ev.conviction == ev.conviction
        and ev.conviction < full
    ):
        half = rp[SZ_CONV_HALF]
        if half == half and ev.conviction >= half:
            qty *= 0.5
        else:
            refused = R_LOW_CONVICTION
    if refused != 0:
        reasons = refused
        qty = 0.0
    else:
        if g.si[ev.strategy, SI_HEALTH] == H_THROTTLED:
            qty *= rp[LN_THROTTLE]
            reasons |= R_SIZE_THROTTLED
        cap = rp[SZ_MAX_QTY]
        if cap == cap and qty > cap:
            qty = cap
            reasons |= R_SIZE_CAPPED
        qty = np.floor(qty / lot + 1e-9) * lot
        if qty <= 0:
            reasons |= R_SIZING_ZERO_QTY
            qty = 0.0
    return reasons, qty


class Decision(NamedTuple):
    """The outcome of one signal (a tuple in kernels): what to send and what it was based on."""

    reasons: int
    side: int
    qty: float
    price: float  # price the decision used (signal's, else the last price)
    stop_px: float  # absolute protective levels sent (nan: none or given as a fraction)
    target_px: float
    target_pct: float
    risk: float  # money lost at the stop for the sized quantity (nan: no stop)
    exposure: float  # gross notional of the account after the order


@kernel
def decide_signal_nb(
    g,
    rp,
    ev,
    mkt,
    entries_working: int,
    entry_side_working: int,
    exit_working: float,
    equity: float,
    in_hours: bool,
    quality: float,
):
    """The whole decision for one signal; returns the fields of ``Decision`` as a tuple.

    Both drivers call this; they differ only in where the inputs come from (the book, or a
    Broker) and where approved orders go.
    """
    s = np.int64(ev.sym)
    if s < 0:
        reasons = R_NO_BAR_AFTER_SIGNAL if s == SYM_NO_BAR_AFTER else R_UNKNOWN_SYMBOL
        return reasons, np.int64(ev.side), 0.0, ev.price, np.nan, np.nan, 0.0, np.nan, np.nan
    reasons = state_gate_nb(g, ev) | advisory_gate_nb(g, rp, ev) | stale_gate_nb(g, rp, ev)
    pos = mkt.pos[s]
    mark = mkt.mark[s]
    mult = mkt.mult[s]
    if ev.intent == INTENT_EXIT:
        r, side, qty = decide_exit_nb(ev, pos, exit_working, rp, mkt.lot[s])
        reasons |= r
        if side != 0:
            reasons |= order_controls_nb(g, rp, ev, qty, mark, mark, mult)
        return reasons, np.int64(side), qty, mark, np.nan, np.nan, 0.0, np.nan, np.nan
    price = ev.price if ev.price == ev.price else mark
    if pos != 0.0:
        if (pos > 0) == (ev.side > 0):
            winner = (mark - mkt.avg[s]) * pos > 0
            if not (rp[RK_ADD_TO_WINNER] != 0.0 and winner):
                reasons |= R_DUPLICATE_POSITION
        else:
            reasons |= R_CONFLICTING_POSITION
    elif entries_working > 0:
        if entry_side_working != 0 and entry_side_working != ev.side:
            reasons |= R_CONFLICTING_POSITION
        else:
            reasons |= R_DUPLICATE_POSITION
    ref = price
    if ev.otype == LIMIT and ev.limit_px == ev.limit_px:
        ref = ev.limit_px
    elif (ev.otype == STOP or ev.otype == STOP_LIMIT) and ev.entry_stop_px == ev.entry_stop_px:
        ref = ev.entry_stop_px
    r, dist, target_px, target_pct = protection_nb(ev, ref, mkt.tick[s], rp)
    reasons |= r
    reasons |= risk_gate_nb(g, rp, ev, mkt, equity, in_hours, quality)
    r, qty = size_entry_nb(g, rp, ev, price, dist, equity, mkt.lot[s], mult)
    reasons |= r
    exposure = np.nan
    if qty > 0 and price == price:
        r, exposure, qty = exposure_gate_nb(g, rp, ev, qty, price, mkt, equity)
        reasons |= r
    risk = np.nan
    if dist == dist:
        risk = qty * dist * mult
        lim = rp[ENT_MAX_LOSS]
        if lim == lim and risk > lim + 1e-9:
            reasons |= R_MAX_LOSS_CAP
    reasons |= order_controls_nb(g, rp, ev, qty, price, mark, mult)
    if g.si[ev.strategy, SI_HEALTH] == H_QUARANTINED:
        reasons |= R_STRATEGY_QUARANTINED | R_SHADOW_TRADE
        if (reasons & REFUSING_MASK & ~R_STRATEGY_QUARANTINED) == 0:
            stop = ev.stop_px
            if stop != stop and dist == dist:
                stop = ref - ev.side * dist
            target = target_px
            if target != target and target_pct > 0 and ref == ref:
                target = ref * (1.0 + ev.side * target_pct)
            open_shadow_nb(g, ev.strategy, s, ev.side, ref, stop, target, ev.ts, ev.bar)
    return reasons, np.int64(ev.side), qty, price, ev.stop_px, target_px, target_pct, risk, exposure


@kernel
def commit_entry_nb(g, ev, qty: float, price: float, mult: float, dist: float) -> None:
    """An entry went out: count it against today's limits and remember its risk unit."""
    s = np.int64(ev.sym)
    k = ev.strategy
    g.si[k, SI_TRADES_TODAY] += 1
    g.ai[AI_TRADES_TODAY] += 1
    if price == price:
        g.sf[k, SF_ALLOC_TODAY] += qty * price * mult
    g.yi[s, YI_ENTRY_SIDE] = ev.side
    g.yi[s, YI_ENTRY_CYCLE] = ev.seq
    g.yi[s, YI_ENTRY_STRATEGY] = k
    g.yi[s, YI_TRADE_TYPE] = ev.trade_type  # the profile's EOD close reads it (supervise.py)
    g.yf[s, YF_DECISION_PX] = price  # the reference of its fills' slippage (execution.py)
    g.yf[s, YF_RISK_PER_UNIT] = dist
    note_order_nb(g, ev.ts)


@kernel
def record_verdict_nb(
    dec, ev, row: int, approved: bool, d, pos: float, equity: float, order: int, g, rp
) -> None:
    """Journal one verdict, approved or not (a refused one sent nothing: qty 0).

    ``d`` is the decision tuple; the verdict keeps the numbers the decision used.
    """
    n = dec.ctr[N_VERDICTS]
    dec.ctr[N_VERDICTS] = n + 1
    v = dec.verdicts[n]
    v.cycle = ev.seq
    v.event = row
    v.ts = ev.ts
    v.bar = ev.bar
    v.strategy = ev.strategy
    v.sym = ev.sym
    v.side = d[1] if approved else ev.side  # a refused verdict names the signal's own side
    v.intent = ev.intent
    v.approved = approved
    v.reasons = d[0]
    v.qty = d[2] if approved else 0.0  # nothing was sent
    v.price = d[3]
    v.position = pos
    v.equity = equity
    v.entry_order = order
    v.stop_px = d[4]
    v.target_px = d[5]
    v.risk = d[7]
    v.exposure = d[8]
    v.conviction = ev.conviction
    v.source_id = ev.source_id
    advice, conf = fresh_advisory_nb(g, rp, ev)
    v.advice = advice
    v.advice_conf = conf


@kernel
def record_stop_update_nb(dec, ev, row: int, d, pos: float, equity: float, leg: int, g, rp):
    """Journal a stop update's verdict, filed under the cycle of the position whose stop leg
    it judged (its own cycle when there is none)."""
    n = dec.ctr[N_VERDICTS]
    record_verdict_nb(dec, ev, row, d[0] == R_STOP_MOVED, d, pos, equity, leg, g, rp)
    if leg >= 0 and ev.sym >= 0:
        dec.verdicts[n].cycle = g.yi[ev.sym, YI_ENTRY_CYCLE]


@kernel
def engine_exit_event_nb(g, pf, s: int, side: int, role: int, ts: int, bar: int):
    """The event record of an exit the engine itself sends (exit manager, kill switch): it
    belongs to the cycle and strategy of the position it closes."""
    ev = g.scratch[0]
    ev.bar = bar
    ev.ts = ts
    ev.seq = pf.rti[s, RTI_CYCLE]
    ev.sym = s
    ev.strategy = pf.rti[s, RTI_STRATEGY]
    ev.side = side
    ev.intent = INTENT_EXIT
    ev.kind = KIND_SIGNAL
    ev.exit_role = role
    ev.exit_fraction = 0.0  # the whole position (the scratch record is reused)
    ev.trade_type = 0
    ev.qty = np.nan
    ev.price = np.nan
    ev.stop_px = np.nan
    ev.target_px = np.nan
    ev.conviction = np.nan
    ev.target_dollars = np.nan
    ev.source_id = -1
    ev.advice = 0
    return ev
