"""The fused backtest loop's order builder: approved decisions written into the simulated book.

The event driver turns the same decisions into order commands (``engine/brackets.py``) and
sends them through the broker port; the fused loop builds the orders in the simulator's book
directly, for speed. Both give the same orders, client ids included (the parity tests).
"""

from __future__ import annotations

import numpy as np

from backstop.brokers.sim.matcher import (
    GTC,
    LIMIT,
    MARKET,
    R_ENTRY_REMAINDER_CANCELED,
    ROLE_ENTRY,
    STOP,
    STOP_LIMIT,
    accept_order_nb,
    alloc_order_nb,
    cancel_order_nb,
    is_terminal_nb,
)
from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import FIRST_FREE_LEG
from backstop.engine.core.prices import round_to_tick_nb


@kernel
def submit_entry_nb(
    book, tick: float, lot: float, ev, qty: float, ref: float, target_px: float, target_pct: float
) -> int:
    """Order builder for an approved entry: the entry carries its bracket legs' levels.

    Absolute levels are rounded to the tick here, when the order is built; levels given as a
    fraction are set from the fill price when the entry fills (and rounded then). ``tick`` and
    ``lot`` are the symbol's. A scale-in
    entry (``scale_in_pct``) is two entries of one cycle: half as asked, half as a limit that
    far back from ``ref`` (the decision's price), each with its own legs.
    """
    s = np.int64(ev.sym)
    otype = MARKET
    if ev.otype == LIMIT or ev.otype == STOP or ev.otype == STOP_LIMIT:
        otype = np.int64(ev.otype)
    k = alloc_order_nb(
        book, ev.seq, ev.strategy, s, ev.side, otype, ev.tif, ROLE_ENTRY, qty, ev.ts, ev.bar
    )
    o = book.orders[k]
    if otype in (LIMIT, STOP_LIMIT):
        o.limit_px = round_to_tick_nb(ev.limit_px, tick)
    if otype in (STOP, STOP_LIMIT):
        o.stop_px = round_to_tick_nb(ev.entry_stop_px, tick)
    o.leg_stop = round_to_tick_nb(ev.stop_px, tick)
    o.leg_target = round_to_tick_nb(target_px, tick)
    o.leg_stop_pct = ev.stop_pct if ev.stop_pct > 0 else np.nan
    o.leg_target_pct = target_pct if target_pct > 0 else np.nan
    o.trail_pct = ev.trail_pct if ev.trail_pct > 0 else 0.0
    if ev.scale_in_pct > 0 and ref == ref:
        first = np.floor(qty / 2.0 / lot + 1e-9) * lot
        if first > 0 and qty - first > 0:
            o.qty = first
            add = alloc_order_nb(
                book, ev.seq, ev.strategy, s, ev.side, LIMIT, GTC, ROLE_ENTRY, qty - first, ev.ts,
                ev.bar,
            )  # fmt: skip
            a = book.orders[add]
            a.limit_px = round_to_tick_nb(ref * (1.0 - ev.side * ev.scale_in_pct), tick)
            a.leg_stop, a.leg_target = o.leg_stop, o.leg_target
            a.leg_stop_pct, a.leg_target_pct, a.trail_pct = (
                o.leg_stop_pct,
                o.leg_target_pct,
                o.trail_pct,
            )
            a.leg_no = 3  # its legs are 4 and 5: client ids stay unique within the cycle
            accept_order_nb(book, k)
            accept_order_nb(book, add)
            return k
    accept_order_nb(book, k)
    return k


@kernel
def submit_exit_nb(book, ev, side: int, qty: float, role: int, reasons: int) -> int:
    """Order builder for an approved exit: a plain reduce-only market order.

    Working entries of the symbol are cancelled in the same step: an entry still filling
    after the exit would rebuild the position the exit closes. ``reasons`` say why those
    entries went (the exit's own rule, or the kill switch).
    """
    s = np.int64(ev.sym)
    for j in range(book.nwork[s]):
        w = book.work[s, j]
        if book.orders[w].role == ROLE_ENTRY and not is_terminal_nb(book.orders[w].status):
            cancel_order_nb(book, w, ev.ts, R_ENTRY_REMAINDER_CANCELED | reasons)
    k = alloc_order_nb(
        book, ev.seq, ev.strategy, ev.sym, side, MARKET, GTC, role, qty, ev.ts, ev.bar
    )
    book.orders[k].reduce_only = True
    book.orders[k].leg_no = FIRST_FREE_LEG + 2 * ev.bar  # one exit per cycle and bar
    accept_order_nb(book, k)
    return k
