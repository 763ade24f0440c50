"""The decision functions of the pipeline: exit guard, entry guard, sizer, order builder.

Both drivers call these same kernels: the backtest loop for every signal row, the event driver
(live runner, replay, step-by-step backtest) once per signal. They see only numbers the Broker
protocol can give (position held, working orders, last price, equity), never whether that
broker is simulated.

Every refusal or change is a bit in the verdict's reason mask (``ReasonCode``); nothing returns
"no order" without one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.codes import (  # noqa: F401  (re-exported to the drivers)
    INTENT_ENTRY,
    INTENT_EXIT,
    R_ALREADY_CLOSED,
    R_CONFLICTING_POSITION,
    R_DUPLICATE_POSITION,
    R_EXIT_CLAMPED,
    R_EXIT_NO_EXPOSURE,
    R_EXIT_SIDE_MISMATCH,
    R_MISSING_PROTECTION,
    R_NO_BAR_AFTER_SIGNAL,
    R_PROTECTION_WRONG_SIDE,
    R_SIZING_NO_PRICE,
    R_SIZING_ZERO_QTY,
    R_UNKNOWN_SYMBOL,
    REFUSING_MASK,
)
from backstop.engine.core.exchange import (
    GTC,
    LIMIT,
    MARKET,
    R_ENTRY_REMAINDER_CANCELED,
    ROLE_ENTRY,
    ROLE_SIGNAL_EXIT,
    STOP,
    STOP_LIMIT,
    accept_order_nb,
    alloc_order_nb,
    cancel_order_nb,
    is_terminal_nb,
)
from backstop.engine.core.fill_rules import round_to_tick_nb
from backstop.engine.core.records import N_VERDICTS

SYM_UNKNOWN = np.int64(-1)
SYM_NO_BAR_AFTER = np.int64(-2)

SIZER_FIXED = np.int64(0)  # else: percent of equity (see BacktestConfig.sizer)


@njit(cache=True)
def decide_exit_nb(
    side: int, want_qty: float, pos: float, exit_working: float
) -> tuple[int, int, float]:
    """Reduce-only exit guard: return (reasons, side to send, quantity to send).

    Side and size come from the position held, never from the signal: flat -> refused; the
    signal's side must be the one that reduces; the quantity is clamped to what is held and not
    already being closed by working exits.
    """
    if pos == 0.0:
        return R_EXIT_NO_EXPOSURE, 0, 0.0
    derived = -1 if pos > 0 else 1
    if side != 0 and side != derived:
        return R_EXIT_SIDE_MISMATCH, 0, 0.0
    available = abs(pos) - exit_working
    if available <= 1e-12:
        return R_ALREADY_CLOSED, 0, 0.0
    if np.isnan(want_qty):
        return 0, derived, available
    if want_qty > available + 1e-12:
        return R_EXIT_CLAMPED, derived, available
    return 0, derived, want_qty


@njit(cache=True)
def decide_entry_nb(
    ev, pos: float, entries_working: int, mark: float, equity: float, lot: float, mult: float, prm
) -> tuple[int, float, float]:
    """Entry guard and sizer: return (reasons, quantity, price the decision used)."""
    reasons = 0
    price = ev.price if not np.isnan(ev.price) else mark
    if pos != 0.0:
        if (pos > 0) == (ev.side > 0):
            reasons |= R_DUPLICATE_POSITION
        else:
            reasons |= R_CONFLICTING_POSITION
    elif entries_working > 0:
        reasons |= R_DUPLICATE_POSITION
    has_stop = not np.isnan(ev.stop_px) or ev.stop_pct > 0 or ev.trail_pct > 0
    has_target = not np.isnan(ev.target_px) or ev.target_pct > 0
    if prm.require_protection and not (has_stop and has_target):
        reasons |= R_MISSING_PROTECTION
    if ev.stop_pct < 0 or ev.target_pct < 0 or ev.trail_pct < 0:
        reasons |= R_PROTECTION_WRONG_SIDE
    ref = price
    if ev.otype == LIMIT and not np.isnan(ev.limit_px):
        ref = ev.limit_px
    elif (ev.otype == STOP or ev.otype == STOP_LIMIT) and not np.isnan(ev.entry_stop_px):
        ref = ev.entry_stop_px
    if not np.isnan(ref):
        if not np.isnan(ev.stop_px) and (ev.stop_px - ref) * ev.side >= 0:
            reasons |= R_PROTECTION_WRONG_SIDE
        if not np.isnan(ev.target_px) and (ev.target_px - ref) * ev.side <= 0:
            reasons |= R_PROTECTION_WRONG_SIDE
    qty = ev.qty
    if np.isnan(qty):
        if prm.sizer_kind == SIZER_FIXED:
            qty = prm.sizer_qty
        elif np.isnan(price) or price <= 0:
            reasons |= R_SIZING_NO_PRICE
            qty = 0.0
        else:
            qty = equity * prm.sizer_pct / (price * mult)
    qty = np.floor(qty / lot + 1e-9) * lot
    if qty <= 0 and (reasons & R_SIZING_NO_PRICE) == 0:
        reasons |= R_SIZING_ZERO_QTY
    return reasons, qty, price


@njit(cache=True)
def decide_signal_nb(
    ev,
    pos: float,
    entries_working: int,
    exit_working: float,
    mark: float,
    equity: float,
    lot: float,
    mult: float,
    prm,
) -> tuple[int, int, float, float]:
    """The whole decision for one signal: return (reasons, side to send, qty, price used).

    Both drivers call this; they differ only in where the inputs come from (the book, or a
    Broker) and where approved orders go. A signal for a symbol without bars is refused here.
    """
    s = ev.sym
    if s < 0:
        reasons = R_NO_BAR_AFTER_SIGNAL if s == SYM_NO_BAR_AFTER else R_UNKNOWN_SYMBOL
        return reasons, np.int64(ev.side), 0.0, ev.price
    if ev.intent == INTENT_EXIT:
        reasons, side, qty = decide_exit_nb(ev.side, ev.qty, pos, exit_working)
        return reasons, side, qty, mark
    reasons, qty, price = decide_entry_nb(ev, pos, entries_working, mark, equity, lot, mult, prm)
    return reasons, np.int64(ev.side), qty, price


@njit(cache=True)
def submit_entry_nb(book, tick, ev, qty: float) -> int:
    """Order builder for an approved entry: the entry carries its bracket legs' levels.

    Absolute levels are rounded to the tick here, when the order is built; levels given as a
    fraction are set from the fill price when the entry fills (and rounded then).
    """
    s = ev.sym
    otype = MARKET
    if ev.otype == LIMIT or ev.otype == STOP or ev.otype == STOP_LIMIT:
        otype = np.int64(ev.otype)
    k = alloc_order_nb(
        book.orders,
        book.ctr,
        ev.seq,
        ev.strategy,
        s,
        ev.side,
        otype,
        ev.tif,
        ROLE_ENTRY,
        qty,
        ev.ts,
        ev.bar,
    )
    o = book.orders[k]
    if otype in (LIMIT, STOP_LIMIT):
        o.limit_px = round_to_tick_nb(ev.limit_px, tick[s])
    if otype in (STOP, STOP_LIMIT):
        o.stop_px = round_to_tick_nb(ev.entry_stop_px, tick[s])
    o.leg_stop = round_to_tick_nb(ev.stop_px, tick[s])
    o.leg_target = round_to_tick_nb(ev.target_px, tick[s])
    o.leg_stop_pct = ev.stop_pct if ev.stop_pct > 0 else np.nan
    o.leg_target_pct = ev.target_pct if ev.target_pct > 0 else np.nan
    o.trail_pct = ev.trail_pct if ev.trail_pct > 0 else 0.0
    accept_order_nb(book.orders, book.work, book.nwork, book.ctr, k)
    return k


@njit(cache=True)
def submit_exit_nb(book, ev, side: int, qty: float) -> int:
    """Order builder for an approved exit: a plain reduce-only market order.

    Working entries of the symbol are cancelled in the same step: an entry still filling
    after the exit would rebuild the position the exit closes.
    """
    s = ev.sym
    for j in range(book.nwork[s]):
        w = book.work[s, j]
        if book.orders[w].role == ROLE_ENTRY and not is_terminal_nb(book.orders[w].status):
            cancel_order_nb(book.orders, book.ctr, w, ev.ts, R_ENTRY_REMAINDER_CANCELED)
    k = alloc_order_nb(
        book.orders,
        book.ctr,
        ev.seq,
        ev.strategy,
        ev.sym,
        side,
        MARKET,
        GTC,
        ROLE_SIGNAL_EXIT,
        qty,
        ev.ts,
        ev.bar,
    )
    book.orders[k].reduce_only = True
    accept_order_nb(book.orders, book.work, book.nwork, book.ctr, k)
    return k


@njit(cache=True)
def record_verdict_nb(
    dec,
    ev,
    row: int,
    approved: bool,
    reasons: int,
    side: int,
    qty: float,
    price: float,
    pos: float,
    equity: float,
    order: int,
) -> None:
    """Journal one verdict, approved or not (a refused one sent nothing: qty 0)."""
    n = dec.ctr[N_VERDICTS]
    dec.ctr[N_VERDICTS] = n + 1
    v = dec.verdicts[n]
    v.cycle = ev.seq
    v.event = row
    v.ts = ev.ts
    v.bar = ev.bar
    v.strategy = ev.strategy
    v.sym = ev.sym
    v.side = side if approved else ev.side  # a refused verdict names the signal's own side
    v.intent = ev.intent
    v.approved = approved
    v.reasons = reasons
    v.qty = qty if approved else 0.0  # nothing was sent
    v.price = price
    v.position = pos
    v.equity = equity
    v.entry_order = order
