"""Netting positions, average price, cash, realized P&L and round trips, as kernels.

Accounting conventions (chosen so that ``cash + marked positions = equity`` after every fill):

- equities: cash pays the full notional (qty x price x multiplier) and every fee; a position is
  marked at qty x mark x multiplier;
- futures: no notional changes hands; cash moves by realized P&L and fees; a position is
  marked at its open P&L, qty x (mark - average price) x multiplier.

A round trip opens when a position leaves zero and closes when it returns to zero; a fill that
crosses zero closes one round trip and opens the next with the remainder. Its exit reason is
the role of the order whose fill closed it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.ahead import kernel
from backstop.engine.core.records import (
    ACCT_CASH,
    ACCT_FEES,
    ACCT_REALIZED,
    N_HELD,
    N_TRADES,
    RT_ALT_PROX,
    RT_ALT_STOP,
    RT_ALT_TARGET,
    RT_ENTRY_QTY,
    RT_ENTRY_VAL,
    RT_EXIT_QTY,
    RT_EXIT_VAL,
    RT_FEES,
    RT_MAX_QTY,
    RT_N,
    RT_REALIZED,
    RTI_AMBIGUOUS,
    RTI_CYCLE,
    RTI_ENTRY_BAR,
    RTI_ENTRY_TS,
    RTI_SIDE,
    RTI_STRATEGY,
)


@kernel
def equity_nb(pf) -> float:
    """Cash plus every position marked at its last price (see the module doc for how
    equities and futures are marked)."""
    total = pf.acct[ACCT_CASH]
    pos = pf.pos
    held = pf.held
    mark = pf.mark
    avg = pf.avg
    mult = pf.mult
    is_future = pf.is_future
    for k in range(pf.ctr[N_HELD]):  # ascending, as a scan of every symbol would add them
        # an unsigned index and selects instead of branches: one call a signal walks ~50
        # held symbols on W, and the index wrap-around and branches were most of each step
        s = np.uint64(held[k])
        q = pos[s]
        a = avg[s]
        m = mark[s]
        m = a if m != m else m  # never marked: at cost
        base = (m - a) if is_future[s] else m
        total += q * base * mult[s]
    return total


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _open_round_trip_nb(
    pf, s: int, side: int, cycle: int, strategy: int, ts: int, bar: int
) -> None:
    for c in range(RT_N):
        pf.rt[s, c] = 0.0
    pf.rti[s, RTI_CYCLE] = cycle
    pf.rti[s, RTI_STRATEGY] = strategy
    pf.rti[s, RTI_ENTRY_TS] = ts
    pf.rti[s, RTI_ENTRY_BAR] = bar
    pf.rti[s, RTI_SIDE] = side
    pf.rti[s, RTI_AMBIGUOUS] = 0


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _close_round_trip_nb(pf, s: int, ts: int, bar: int, role: int) -> None:
    t = pf.ctr[N_TRADES]
    pf.ctr[N_TRADES] = t + 1
    r = pf.trades[t]
    rt = pf.rt[s]
    rti = pf.rti
    r.id = t
    r.cycle = rti[s, RTI_CYCLE]
    r.strategy = rti[s, RTI_STRATEGY]
    r.sym = s
    r.side = rti[s, RTI_SIDE]
    r.exit_role = role
    r.ambiguous = rti[s, RTI_AMBIGUOUS] != 0
    r.qty = rt[RT_MAX_QTY]
    r.entry_px = rt[RT_ENTRY_VAL] / rt[RT_ENTRY_QTY]
    r.exit_px = rt[RT_EXIT_VAL] / rt[RT_EXIT_QTY]
    r.pnl = rt[RT_REALIZED]
    r.fees = rt[RT_FEES]
    r.entry_ts = rti[s, RTI_ENTRY_TS]
    r.exit_ts = ts
    r.entry_bar = rti[s, RTI_ENTRY_BAR]
    r.exit_bar = bar
    r.pnl_stop_first = rt[RT_REALIZED] + rt[RT_ALT_STOP]
    r.pnl_target_first = rt[RT_REALIZED] + rt[RT_ALT_TARGET]
    r.pnl_open_proximity = rt[RT_REALIZED] + rt[RT_ALT_PROX]


@kernel
def apply_fill_nb(pf, fill) -> None:
    """Book one fill record into the portfolio: position, average, cash, P&L, round trip."""
    s = fill.sym
    side = fill.side
    qty = fill.qty
    px = fill.price
    m = pf.mult[s]
    fut = pf.is_future[s]
    pos = pf.pos[s]
    pf.acct[ACCT_CASH] -= fill.fee
    pf.acct[ACCT_FEES] += fill.fee
    if pos == 0.0 or (pos > 0) == (side > 0):
        # opening or adding
        if pos == 0.0:
            _open_round_trip_nb(pf, s, side, fill.cycle, fill.strategy, fill.ts, fill.bar)
        new = abs(pos) + qty
        pf.avg[s] = (abs(pos) * pf.avg[s] + qty * px) / new
        pf.pos[s] = pos + side * qty
        pf.rt[s, RT_ENTRY_QTY] += qty
        pf.rt[s, RT_ENTRY_VAL] += qty * px
        pf.rt[s, RT_FEES] += fill.fee
        if new > pf.rt[s, RT_MAX_QTY]:
            pf.rt[s, RT_MAX_QTY] = new
        if not fut:
            pf.acct[ACCT_CASH] -= side * qty * px * m
    else:
        # reducing, closing or crossing zero
        close_q = qty if qty < abs(pos) else abs(pos)
        sign = 1.0 if pos > 0 else -1.0
        realized = close_q * (px - pf.avg[s]) * sign * m
        pf.acct[ACCT_REALIZED] += realized
        if fut:
            pf.acct[ACCT_CASH] += realized
        else:
            pf.acct[ACCT_CASH] -= side * close_q * px * m
        share = close_q / qty
        pf.rt[s, RT_REALIZED] += realized
        pf.rt[s, RT_EXIT_QTY] += close_q
        pf.rt[s, RT_EXIT_VAL] += close_q * px
        pf.rt[s, RT_FEES] += fill.fee * share
        if fill.ambiguous:
            pf.rti[s, RTI_AMBIGUOUS] = 1
            pf.rt[s, RT_ALT_STOP] += close_q * (fill.alt_stop_first - px) * sign * m
            pf.rt[s, RT_ALT_TARGET] += close_q * (fill.alt_target_first - px) * sign * m
            pf.rt[s, RT_ALT_PROX] += close_q * (fill.alt_open_proximity - px) * sign * m
        pf.pos[s] = pos + side * close_q
        if abs(pf.pos[s]) < 1e-12:
            pf.pos[s] = 0.0
            _close_round_trip_nb(pf, s, fill.ts, fill.bar, fill.role)
            pf.avg[s] = 0.0
        rest = qty - close_q
        if rest > 1e-12:
            # crossed zero: the remainder opens a new round trip at this price
            _open_round_trip_nb(pf, s, side, fill.cycle, fill.strategy, fill.ts, fill.bar)
            pf.pos[s] = side * rest
            pf.avg[s] = px
            pf.rt[s, RT_ENTRY_QTY] = rest
            pf.rt[s, RT_ENTRY_VAL] = rest * px
            pf.rt[s, RT_MAX_QTY] = rest
            pf.rt[s, RT_FEES] = fill.fee * (1.0 - share)
            if not fut:
                pf.acct[ACCT_CASH] -= side * rest * px * m
    _track_held_nb(pf, np.int64(s), pos != 0.0, pf.pos[s] != 0.0)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _track_held_nb(pf, s: int, was: bool, now: bool) -> None:
    """Keep ``pf.held`` (ascending) in step with a position that opened or closed, so that
    ``equity_nb`` visits the symbols holding one instead of every symbol (a scan of 100
    symbols per signal was 9% of a W run)."""
    if was != now:
        held = pf.held
        n = pf.ctr[N_HELD]
        k = 0
        while k < n and held[k] < s:
            k += 1
        if now:
            for j in range(n, k, -1):
                held[j] = held[j - 1]
            held[k] = s
            pf.ctr[N_HELD] = n + 1
        else:
            for j in range(k, n - 1):
                held[j] = held[j + 1]
            pf.ctr[N_HELD] = n - 1
