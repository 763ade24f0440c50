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

from backstop.engine.core.decide import (
    INTENT_EXIT,
    REFUSING_MASK,
    decide_signal_nb,
    record_verdict_nb,
    submit_entry_nb,
    submit_exit_nb,
)
from backstop.engine.core.exchange import (
    REJECTED,
    bar_touches_orders_nb,
    process_bar_nb,
    working_summary_nb,
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
)

NO_ORDER = np.int64(-1)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def handle_signal_nb(book, pf, dec, tick, lot, mult, is_future, prm, ev, row: int) -> None:
    """Run one signal through guard -> sizer -> order builder and journal its verdict."""
    s = ev.sym
    equity = equity_nb(pf.pos, pf.avg, pf.mark, pf.acct[0], mult, is_future)
    pos = 0.0
    entries = 0
    exit_qty = 0.0
    mark = np.nan
    lot_s = 1.0
    mult_s = 1.0
    if s >= 0:
        pos = book.xpos[s]
        entries, exit_qty = working_summary_nb(book.orders, book.work, book.nwork, s)
        mark = pf.mark[s]
        lot_s = lot[s]
        mult_s = mult[s]
    reasons, side, qty, price = decide_signal_nb(
        ev, pos, entries, exit_qty, mark, equity, lot_s, mult_s, prm
    )
    approved = (reasons & REFUSING_MASK) == 0
    order = NO_ORDER
    if approved:
        if ev.intent == INTENT_EXIT:
            order = submit_exit_nb(book, ev, side, qty)
        else:
            order = submit_entry_nb(book, tick, ev, qty)
        if book.orders[order].status == REJECTED:
            approved = False
            reasons |= book.orders[order].reasons
    record_verdict_nb(dec, ev, row, approved, reasons, side, qty, price, pos, equity, order)


@njit(cache=True)
def run_loop_nb(
    ts,
    sym,
    open_,
    high,
    low,
    close,
    volume,
    session,
    events,
    tick,
    lot,
    mult,
    is_future,
    prm,
    book,
    pf,
    dec,
    start: int,
    ev_start: int,
    skip_bar: bool,
) -> tuple[int, int, int]:
    """Run bars ``start..`` and events ``ev_start..``; return (next bar, next event, status).

    Stops early with ``STATUS_NEED_ROOM`` / ``STATUS_NEED_ROOM_EVENTS`` (before touching a bar
    or event it has no room for), so the caller can grow the record arrays and resume with the
    returned cursors; ``skip_bar`` says the resumed bar's fills were already processed. The
    loop runs to the end of the bar arrays it is given: the caller bounds a chunk by slicing.
    """
    n = len(ts)
    n_ev = len(events)
    j = ev_start
    room = 2 * book.work.shape[1] + 2
    for i in range(start, n):
        s = sym[i]
        if not skip_bar:
            if (
                book.ctr[N_ORDERS] + room > len(book.orders)
                or book.ctr[N_FILLS] + room > len(book.fills)
                or pf.ctr[N_TRADES] + room > len(pf.trades)
            ):
                return i, j, STATUS_NEED_ROOM
            if book.nwork[s] > 0 and bar_touches_orders_nb(
                book.orders, book.work, book.nwork, s, i, high[i], low[i], session[i]
            ):
                f0 = book.ctr[N_FILLS]
                process_bar_nb(
                    book,
                    prm,
                    tick,
                    lot,
                    mult,
                    s,
                    i,
                    ts[i],
                    open_[i],
                    high[i],
                    low[i],
                    volume[i],
                    session[i],
                )
                for f in range(f0, book.ctr[N_FILLS]):
                    apply_fill_nb(pf, mult, is_future, book.fills[f])
                if book.ctr[ERROR] != 0:
                    return i, j, STATUS_ERROR
            pf.mark[s] = close[i]
        skip_bar = False
        while j < n_ev and events[j].bar == i:
            if book.ctr[N_ORDERS] + 3 > len(book.orders) or dec.ctr[N_VERDICTS] + 1 > len(
                dec.verdicts
            ):
                return i, j, STATUS_NEED_ROOM_EVENTS
            handle_signal_nb(book, pf, dec, tick, lot, mult, is_future, prm, events[j], j)
            j += 1
    return n, j, STATUS_DONE


@njit(cache=True)
def positions_by_row_nb(sym, fill_bar, fill_sym, fill_signed_qty, n_sym: int) -> np.ndarray:
    """Position of each row's symbol after that row's fills (fills sorted by bar row)."""
    n = len(sym)
    out = np.empty(n, dtype=np.float64)
    held = np.zeros(n_sym, dtype=np.float64)
    f = 0
    nf = len(fill_bar)
    for i in range(n):
        while f < nf and fill_bar[f] == i:
            held[fill_sym[f]] += fill_signed_qty[f]
            f += 1
        out[i] = held[sym[i]]
    return out


@njit(cache=True)
def equity_by_ts_nb(
    ts, sym, close, pos, mult, cash_flow_by_row, initial_cash: float, n_sym: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equity, cash and gross exposure at the end of each distinct timestamp, in one pass.

    Uses notional accounting for every instrument (cash pays qty x price x multiplier, a
    position is worth qty x close x multiplier); for futures this gives the same equity as
    margin accounting, which is what the curve reports.
    """
    n = len(ts)
    n_ts = 0
    for i in range(n):
        if i == 0 or ts[i] != ts[i - 1]:
            n_ts += 1
    out_ts = np.empty(n_ts, dtype=np.int64)
    out_eq = np.empty(n_ts, dtype=np.float64)
    out_expo = np.empty(n_ts, dtype=np.float64)
    value = np.zeros(n_sym, dtype=np.float64)
    total_value = 0.0
    gross = np.zeros(n_sym, dtype=np.float64)
    total_gross = 0.0
    cash = initial_cash
    t = -1
    for i in range(n):
        if i == 0 or ts[i] != ts[i - 1]:
            t += 1
        s = sym[i]
        v = pos[i] * close[i] * mult[s]
        total_value += v - value[s]
        value[s] = v
        total_gross += abs(v) - gross[s]
        gross[s] = abs(v)
        cash += cash_flow_by_row[i]
        out_ts[t] = ts[i]
        out_eq[t] = cash + total_value
        out_expo[t] = total_gross
    return out_ts, out_eq, out_expo
