"""The simulated exchange's bar in steps, for a venue behind Broker port v2.

``process_bar_nb`` (``matcher.py``) runs a bar in one call for the fused backtest loop. A
venue behind the Broker port reports each fill as it happens and the core answers it
(protective legs, cancels) before matching goes on: orders it sends during the open print
join that pass, as the backtest loop's legs do. These kernels run the same phases, through
the same per-order code, one fill at a time. A phase resumes after the order id it last
returned: working lists are kept in id order, so the cursor survives a compaction.

Orders arrive here as commands (``place_order_nb``, ``amend_order_nb``): no leg levels, and a
book marked ``VENUE_ONLY`` leaves legs, remainder cancels and reduce-only fitting to the core.
"""

from __future__ import annotations

import numpy as np

from backstop.brokers.sim.matcher import (
    _close_phase_nb,
    _intrabar_order_nb,
    _open_order_nb,
    accept_order_nb,
    alloc_order_nb,
    compact_working_nb,
    is_terminal_nb,
    refresh_band_nb,
    set_status_nb,
)
from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import FILLED, TRAILING_STOP


@kernel
def open_step_nb(book, prm, tick, lot, mult, s, i, ts, o_, v, session, after) -> int:
    """Run the open phase of bar ``i`` from the first working order with an id above
    ``after`` (-1: the bar starts); return the id of the order filled, or -1 when done."""
    if after < 0:
        book.used_vol[s] = 0.0
    j = 0
    while j < book.nwork[s]:
        k = book.work[s, j]
        j += 1
        if k > after and _open_order_nb(book, prm, tick, lot, mult, k, i, ts, o_, v, session):
            return k
    return -1


@kernel
def intrabar_step_nb(book, prm, tick, lot, mult, s, i, ts, o_, h, l, v, after) -> int:
    """Run the intrabar phase from the first working order with an id above ``after``;
    return the id of the order it evaluated a fill for, or -1 when done."""
    j = 0
    while j < book.nwork[s]:
        k = book.work[s, j]
        j += 1
        if k > after and _intrabar_order_nb(book, prm, tick, lot, mult, k, i, ts, o_, h, l, v):
            return k
    return -1


@kernel
def close_step_nb(book, tick, s, i, ts, h, l) -> None:
    """End bar ``i``: trailing stops ratchet, IOC remainders go, the working list compacts."""
    _close_phase_nb(book, tick, s, i, ts, h, l)
    compact_working_nb(book, s)
    refresh_band_nb(book, s)


@kernel
def place_order_nb(
    book, cycle, strategy, sym, side, otype, tif, role, qty, ts, live_from, limit_px, stop_px,
    trail_pct, reduce_only,
) -> int:  # fmt: skip
    """Accept (or reject: too many working) an order the core sent as a command; return its
    id. It carries no leg levels: its protection arrives as orders of their own."""
    k = alloc_order_nb(book, cycle, strategy, sym, side, otype, tif, role, qty, ts, live_from - 1)
    o = book.orders[k]
    o.limit_px = limit_px
    o.stop_px = stop_px
    o.reduce_only = reduce_only
    if otype == TRAILING_STOP:
        o.trail_pct = trail_pct
        o.water = stop_px / (1.0 + o.side * trail_pct)  # the price its level trails from
    accept_order_nb(book, k)
    return k


@kernel
def amend_order_nb(book, k, qty, stop_px, limit_px, reasons) -> None:
    """Change a working order in place (nan: unchanged); a quantity never goes below what
    already filled."""
    o = book.orders[k]
    if is_terminal_nb(o.status):
        return
    if not np.isnan(qty):
        o.qty = max(qty, o.filled)
    if not np.isnan(stop_px):
        o.stop_px = stop_px
    if not np.isnan(limit_px):
        o.limit_px = limit_px
    o.reasons |= reasons
    if o.filled > 0.0 and o.qty - o.filled <= 1e-12:
        set_status_nb(book, k, FILLED)
    refresh_band_nb(book, np.int64(o.sym))
