"""The backtest driver: one numba loop over bars merged with signal events.

Per bar row ``i`` (rows sorted by timestamp, then symbol): the simulated exchange matches the
symbol's working orders against the bar, the portfolio books the fills, the bar's close becomes
the symbol's mark, then every event attached to this bar is decided in (priority, seq) order.
No Python runs inside; the Python wrapper only prepares arrays, grows record buffers when the
loop asks for room, and turns the records into frames at the end.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.brokers.sim.matcher import (
    REJECTED,
    amend_stop_nb,
    cancel_order_nb,
    is_terminal_nb,
    pending_entries_nb,
    process_bar_nb,
    working_stop_leg_nb,
    working_summary_nb,
)
from backstop.brokers.sim.order_builder import submit_entry_nb, submit_exit_nb
from backstop.engine.core.ahead import kernel
from backstop.engine.core.bar_step import ACT_EXIT, ACT_KILL, PH_END, PH_TRADES, bar_step_nb
from backstop.engine.core.codes import (
    INTENT_EXIT,
    KIND_CONTROL,
    KIND_SIGNAL,
    KIND_STOP_UPDATE,
    R_KILL_SWITCH_ACTIVE,
    R_KILL_SWITCH_FLATTEN,
    R_STOP_MOVED,
    REFUSING_MASK,
    ROLE_ENTRY,
    ROLE_KILL_SWITCH,
)
from backstop.engine.core.decide import (
    commit_entry_nb,
    decide_exit_nb,
    decide_signal_nb,
    decide_stop_move_nb,
    engine_exit_event_nb,
    record_stop_update_nb,
    record_verdict_nb,
    stop_update_decision_nb,
)
from backstop.engine.core.execution import note_entry_fill_nb
from backstop.engine.core.gates import book_wide_nb, strategy_rp_nb
from backstop.engine.core.guard import (
    AI_DAY,
    AI_N_EVENTS,
    guard_event_room_nb,
    note_order_nb,
)
from backstop.engine.core.portfolio import apply_fill_nb, equity_nb
from backstop.engine.core.records import (
    ERROR,
    N_FILLS,
    N_ORDERS,
    N_TRADES,
    N_VERDICTS,
    STATUS_DONE,
    STATUS_ERROR,
    STATUS_NEED_ROOM,
    STATUS_NEED_ROOM_EVENTS,
    at_nb,
    bar_room_nb,
)
from backstop.engine.core.riskslots import KL_FLATTEN
from backstop.engine.core.state import borrow_nb, prefetch_nb
from backstop.engine.core.supervise import (
    NEED_DAYS,
    apply_advisory_nb,
    apply_control_nb,
    needs_nb,
    trip_kill_nb,
)

NO_ORDER = np.int64(-1)
NO_ROW = np.int64(-1)

PREFETCH_ROWS = 16  # how far ahead the loop asks for the rows only fill bars read


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def engine_exit_nb(book, pf, dec, g, rp, s: int, role: int, reason: int, ts: int, bar: int):
    """Send the exit an exit rule or the kill switch asked for, through the same reduce-only
    guard as a signal exit, and journal its verdict (its code names the rule)."""
    pos = book.xpos[s]
    if pos == 0.0:
        return
    _, _, exit_qty = working_summary_nb(book, s)
    ev = engine_exit_event_nb(g, pf, s, -1 if pos > 0 else 1, role, ts, bar)
    r, side, qty = decide_exit_nb(ev, pos, exit_qty, rp, 1.0)  # the whole position: no lot
    if side == 0:
        return  # working exits already close it: nothing to add
    order = submit_exit_nb(book, ev, side, qty, role, reason)
    note_order_nb(g, ts)
    mark = pf.mark[s]
    d = (reason | r, np.int64(side), qty, mark, np.nan, np.nan, 0.0, np.nan, np.nan)
    record_verdict_nb(dec, ev, NO_ROW, np.bool_(True), d, pos, np.nan, order, g, rp)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def kill_actions_nb(book, pf, dec, g, rp, flatten: bool, ts: int, bar: int) -> None:
    """Kill switch activation: cancel every working entry, then flatten per the policy."""
    for s in range(len(book.xpos)):
        for j in range(book.nwork[s]):
            w = book.work[s, j]
            if book.orders[w].role == ROLE_ENTRY and not is_terminal_nb(book.orders[w].status):
                cancel_order_nb(book, w, ts, R_KILL_SWITCH_ACTIVE)
        if flatten:
            engine_exit_nb(
                book, pf, dec, g, rp, s, ROLE_KILL_SWITCH, R_KILL_SWITCH_FLATTEN, ts, bar
            )


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def handle_signal_nb(
    book, pf, dec, g, rp, mkt, in_hours: bool, quality: float, ev, row: int
) -> None:
    """Run one signal through the pipeline, send what it approves, journal its verdict.

    ``in_hours`` and ``quality`` are the calendar's and the data score's word on the signal's
    bar (scalars, not the context arrays: every array argument costs reference counting)."""
    s = np.int64(ev.sym)
    equity = equity_nb(pf)
    pos = 0.0
    entries = 0
    entry_side = 0
    exit_qty = 0.0
    if s >= 0:
        pos = book.xpos[s]
        entries, entry_side, exit_qty = working_summary_nb(book, s)
    # ``mkt`` is the run's one Market over the book and portfolio arrays; only the working
    # entries are refreshed per signal, for the entry checks that read them
    if ev.intent != INTENT_EXIT and book_wide_nb(rp):
        pending_entries_nb(book, mkt.pending)
    d = decide_signal_nb(
        g,
        strategy_rp_nb(rp, ev.strategy),  # the strategy's own limits, else the account's
        ev,
        mkt,
        entries,
        entry_side,
        exit_qty,
        equity,
        in_hours,
        quality,
    )
    reasons = d[0]
    approved = (reasons & REFUSING_MASK) == 0
    order = NO_ORDER
    if approved:
        if ev.intent == INTENT_EXIT:
            order = submit_exit_nb(book, ev, d[1], d[2], np.int64(ev.exit_role), np.int64(0))
            note_order_nb(g, ev.ts)
        else:
            order = submit_entry_nb(book, mkt.tick[s], mkt.lot[s], ev, d[2], d[3], d[5], d[6])
            mult_s = pf.mult[s]
            dist = d[7] / (d[2] * mult_s) if d[2] > 0 else np.nan
            commit_entry_nb(g, ev, d[2], d[3], mult_s, dist)
        if book.orders[order].status == REJECTED:
            approved = False
            reasons |= book.orders[order].reasons
    d = (reasons, d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8])
    record_verdict_nb(dec, ev, row, approved, d, pos, equity, order, g, rp)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def handle_stop_update_nb(book, pf, dec, g, rp, mkt, ev, row: int) -> None:
    """Move the stop leg of the symbol's position to the strategy's level when it tightens
    it; journal the verdict either way."""
    s = np.int64(ev.sym)
    pos = 0.0
    leg = NO_ORDER
    stop_now = np.nan
    left = 0.0
    tick_s = 0.0
    if s >= 0:
        pos = book.xpos[s]
        tick_s = mkt.tick[s]
        leg = working_stop_leg_nb(book, s)
        if leg >= 0:
            stop_now = book.orders[leg].stop_px
            left = book.orders[leg].qty - book.orders[leg].filled
    reasons, level = decide_stop_move_nb(ev, pos, stop_now, tick_s)
    approved = reasons == R_STOP_MOVED
    if approved:
        amend_stop_nb(book, leg, level, R_STOP_MOVED)
    d = stop_update_decision_nb(reasons, pos, level, left)
    equity = equity_nb(pf)
    record_stop_update_nb(dec, ev, row, d, pos, equity, leg, g, rp)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def handle_control_nb(book, pf, dec, g, rp, ev) -> None:
    """A control action changes the trading state; one that trips the kill switch acts."""
    cause = apply_control_nb(g, rp, ev)
    if cause != 0:
        equity = equity_nb(pf)
        if trip_kill_nb(g, cause, ev.ts, ev.bar, equity):
            kill_actions_nb(book, pf, dec, g, rp, rp_flatten_nb(rp), ev.ts, ev.bar)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def rp_flatten_nb(rp) -> bool:
    from_slot = rp[KL_FLATTEN]
    return from_slot != 0.0


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def supervise_bar_nb(
    book, pf, dec, g, rp, day: int, quality: float, close_ns: int, needs: int, s: int, i: int,
    ts: int, high: float, low: float, t0: int,
) -> None:  # fmt: skip
    """Guardrail work after bar ``i`` of symbol ``s`` was matched and marked: the engine's
    bar step (``engine/core/bar_step.py``, the one the event driver calls too), with its
    actions carried out in the book: a kill cancels working entries and flattens per the
    policy, an exit rule sends a reduce-only exit."""
    t = np.int64(t0)
    phase = PH_TRADES
    while phase != PH_END:
        t, phase, action, role, reason = bar_step_nb(
            pf, g, rp, day, quality, close_ns, needs, s, i, ts, high, low, book.xpos[s], t,
            phase,
        )  # fmt: skip
        if action == ACT_KILL:
            kill_actions_nb(book, pf, dec, g, rp, rp_flatten_nb(rp), ts, i)
        elif action == ACT_EXIT:
            engine_exit_nb(book, pf, dec, g, rp, s, role, reason, ts, i)


@kernel
def run_loop_nb(
    ts,
    sym,
    open_,
    high,
    low,
    close,
    volume,
    session,
    ctx,
    events,
    prm,
    rp,
    book,
    pf,
    dec,
    g,
    mkt,
    start: int,
    ev_start: int,
    skip_bar: bool,
) -> tuple[int, int, int]:
    """Run bars ``start..`` and events ``ev_start..``; return (next bar, next event, status).

    Stops early with ``STATUS_NEED_ROOM`` / ``STATUS_NEED_ROOM_EVENTS`` (before touching a bar
    or event it has no room for), so the caller can grow the record arrays and resume with the
    returned cursors; ``skip_bar`` says the resumed bar's fills were already processed. The
    loop runs to the end of the bar arrays it is given: the caller bounds a chunk by slicing.
    ``mkt`` is the market view over the book's positions and the portfolio's marks and
    average prices (``new_market``), with the symbols' tick, lot and multiplier.
    """
    n = len(ts)
    n_ev = len(events)
    j = ev_start
    n_sym = len(book.xpos)
    rp = borrow_nb(rp)  # passed to a kernel per signal: no reference count to keep
    needs = needs_nb(rp)
    room = bar_room_nb(book.work.shape[1], n_sym)
    guard_room = guard_event_room_nb(g.si.shape[0], n_sym)
    # Read once: these arrays keep their identity for the whole call (buffers grow between
    # calls), and the per-bar path then loads no struct field.
    band = book.band
    book_ctr = book.ctr
    pf_ctr = pf.ctr
    dec_ctr = dec.ctr
    g_ai = g.ai
    mark = pf.mark
    mult = pf.mult
    tick = mkt.tick
    lot = mkt.lot
    # the last counts at which one more bar still fits (the record buffers' sizes hold too)
    orders_max = len(book.orders) - room
    fills_max = len(book.fills) - room
    trades_max = len(pf.trades) - room
    verdicts_max = len(dec.verdicts) - n_sym - 1
    guard_max = len(g.events) - guard_room
    days = ctx.day
    every_row_day = len(days) > 1
    fast_forward = needs == NEED_DAYS
    i = start
    while i < n:
        if fast_forward and not skip_bar:
            # Quiet bars: no event, no working order the bar can reach, no new day. The full
            # body below would only mark their close, so a tight loop does that up to the
            # next bar that needs more (most bars of a backtest are quiet).
            quiet_end = min(events[j].bar, n) if j < n_ev else n
            today = g_ai[AI_DAY]
            while i < quiet_end:
                s = np.int64(sym[i])
                day = days[i] if every_row_day else days[0]
                if (low[i] <= band[s, 0]) | (high[i] >= band[s, 1]) | (day > today):
                    break
                mark[s] = close[i]
                if (i & 7) == 0:
                    ahead = i + PREFETCH_ROWS
                    prefetch_nb(ts, ahead)
                    prefetch_nb(open_, ahead)
                    prefetch_nb(volume, ahead)
                    prefetch_nb(session, ahead)
                i += 1
            if i >= n:
                break
        s = np.int64(sym[i])
        if not skip_bar:
            if (
                book_ctr[N_ORDERS] > orders_max
                or book_ctr[N_FILLS] > fills_max
                or pf_ctr[N_TRADES] > trades_max
                or dec_ctr[N_VERDICTS] > verdicts_max
                or g_ai[AI_N_EVENTS] > guard_max
            ):
                return i, j, STATUS_NEED_ROOM
            t0 = pf_ctr[N_TRADES]
            if (i & 7) == 0:  # once per cache line of float64 (session: half a line)
                ahead = i + PREFETCH_ROWS
                prefetch_nb(ts, ahead)
                prefetch_nb(open_, ahead)
                prefetch_nb(volume, ahead)
                prefetch_nb(session, ahead)
            # the symbol's trigger band (matcher.refresh_band_nb); ``|`` rather than ``or``:
            # one rarely taken branch instead of two
            if (low[i] <= band[s, 0]) | (high[i] >= band[s, 1]):
                f0 = book_ctr[N_FILLS]
                process_bar_nb(
                    book,
                    prm,
                    tick[s],
                    lot[s],
                    mult[s],
                    s,
                    i,
                    ts[i],
                    open_[i],
                    high[i],
                    low[i],
                    volume[i],
                    session[i],
                )
                for f in range(f0, book_ctr[N_FILLS]):
                    fl = book.fills[f]
                    apply_fill_nb(pf, fl)
                    note_entry_fill_nb(g, rp, fl)
                if book_ctr[ERROR] != 0:
                    return i, j, STATUS_ERROR
            mark[s] = close[i]
            day = at_nb(ctx.day, i)
            if needs != NEED_DAYS or pf_ctr[N_TRADES] != t0 or day > g_ai[AI_DAY]:
                supervise_bar_nb(
                    book, pf, dec, g, rp, day, at_nb(ctx.quality, i), at_nb(ctx.close_ns, i),
                    needs, s, i, ts[i], high[i], low[i], t0,
                )  # fmt: skip
        skip_bar = False
        while j < n_ev and events[j].bar == i:
            if (
                book.ctr[N_ORDERS] + 3 + n_sym > len(book.orders)
                or dec.ctr[N_VERDICTS] + 1 + n_sym > len(dec.verdicts)
                or g.ai[AI_N_EVENTS] + guard_room > len(g.events)
            ):
                return i, j, STATUS_NEED_ROOM_EVENTS
            ev = events[j]
            if ev.kind == KIND_SIGNAL:
                b = ev.bar
                in_hours, quality = at_nb(ctx.in_hours, b), at_nb(ctx.quality, b)
                handle_signal_nb(book, pf, dec, g, rp, mkt, in_hours, quality, ev, j)
            elif ev.kind == KIND_STOP_UPDATE:
                handle_stop_update_nb(book, pf, dec, g, rp, mkt, ev, j)
            elif ev.kind == KIND_CONTROL:
                handle_control_nb(book, pf, dec, g, rp, ev)
            else:
                apply_advisory_nb(g, ev)  # remembered for the signals it advises
            j += 1
        i += 1
    return n, j, STATUS_DONE
