"""The simulated exchange's kernels: accept orders, match them against bars, run OCO and legs.

The exchange keeps its own position truth (``Book.xpos``) and enforces reduce-only on its own
orders, as a careful broker would; backstop's exit guard enforces it again before sending,
because neither IBKR nor Alpaca equities do (BROKERS.md).

Order of work inside one bar of one symbol (a named, documented assumption):

1. DAY orders whose first live bar belonged to an earlier session expire.
2. Open phase: every working order that can fill at the open print fills there, in id order
   (market orders; stops and limits gapped through). An entry filled at the open gets its
   protective legs at once, live on this same bar (``legs_live_on_entry_bar``).
3. Intrabar phase: remaining orders whose level lies inside the bar fill at their level. When
   both legs of a bracket are touched, the bar is ambiguous: the ``intrabar`` policy picks the
   leg that fills (stop first by default) and the fill records what each ordering would pay.
4. Trailing stops ratchet with the finished bar; IOC remainders are cancelled.

Kernels that only other kernels call are compiled without a Python entry point
(``no_cpython_wrapper``), which shortens the cold compile; the ones the Python drivers call
(``process_bar_nb``, ``cancel_order_nb``) keep theirs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.brokers.sim.fill_rules import (
    commission_nb,
    limit_at_open_nb,
    limit_intrabar_nb,
    limit_touched_nb,
    round_to_tick_nb,
    slipped_nb,
    stop_at_open_nb,
    stop_intrabar_nb,
    stop_limit_nb,
    stop_touched_nb,
    trailing_level_nb,
    trailing_water_nb,
)
from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import (
    ACCEPTED,
    CANCELED,
    CREATED,
    DAY,
    EXPIRED,
    FILLED,
    FIRST_FREE_LEG,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    PARTIALLY_FILLED,
    R_ENTRY_REMAINDER_CANCELED,
    R_LEG_CANCELED_FLAT,
    R_LEG_RESIZED,
    R_OCO_SIBLING_FILLED,
    R_ORDER_EXPIRED,
    R_TOO_MANY_WORKING,
    REJECTED,
    ROLE_ENTRY,
    ROLE_SIGNAL_EXIT,
    ROLE_STOP_LOSS,
    ROLE_TAKE_PROFIT,
    ROLE_TIME_STOP,
    ROLE_TRAILING,
    STOP,
    STOP_LIMIT,
    SUBMITTED,
    TRAILING_STOP,
)
from backstop.engine.core.params import INTRABAR_OPEN_PROXIMITY, INTRABAR_STOP_FIRST
from backstop.engine.core.records import ERROR, ERROR_ARG, N_FILLS, N_ORDERS, VENUE_ONLY

ERR_ILLEGAL_TRANSITION = np.int64(1)

# Kernel constants are numpy scalars, not Python ints: numba types a Python int constant
# passed as an argument as a literal and compiles one copy of the callee per value.
AT_OPEN = np.bool_(True)
INTRABAR = np.bool_(False)
NOT_AMBIGUOUS = np.bool_(False)

# Allowed (from, to) status transitions: DESIGN.md's state machine. Mirrored by
# backstop.domain.orders.ALLOWED_TRANSITIONS; a test checks the two agree.
_T = np.zeros((8, 8), dtype=np.bool_)
_T[CREATED, SUBMITTED] = True
_T[CREATED, REJECTED] = True
_T[SUBMITTED, ACCEPTED] = True
_T[SUBMITTED, REJECTED] = True
_T[SUBMITTED, CANCELED] = True
for _src in (ACCEPTED, PARTIALLY_FILLED):
    _T[_src, PARTIALLY_FILLED] = True
    _T[_src, FILLED] = True
    _T[_src, CANCELED] = True
    _T[_src, EXPIRED] = True
_T[ACCEPTED, REJECTED] = True
TRANSITIONS = _T


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def is_terminal_nb(status: int) -> bool:
    """Filled, cancelled, rejected and expired orders never change again."""
    return status >= FILLED


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def set_status_nb(book, k: int, new: int) -> None:
    """Move order ``k`` to ``new``; an illegal transition is recorded as a kernel error."""
    cur = book.orders[k].status
    if TRANSITIONS[cur, new]:
        book.orders[k].status = new
    elif book.ctr[ERROR] == 0:
        book.ctr[ERROR] = ERR_ILLEGAL_TRANSITION
        book.ctr[ERROR_ARG] = k


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def alloc_order_nb(
    book,
    cycle: int,
    strategy: int,
    sym: int,
    side: int,
    otype: int,
    tif: int,
    role: int,
    qty: float,
    ts: int,
    bar: int,
) -> int:
    """Create an order record in state CREATED with neutral defaults; return its id.

    Inlined where it is called, it only fixes the argument types: numba compiles a kernel once
    per argument-type signature, and record fields (int8, int32) or literals would each be a
    signature of ``_new_order_nb`` (it was compiled 4 times)."""
    return _new_order_nb(
        book,
        np.int64(cycle),
        np.int64(strategy),
        np.int64(sym),
        np.int64(side),
        np.int64(otype),
        np.int64(tif),
        np.int64(role),
        np.float64(qty),
        np.int64(ts),
        np.int64(bar),
    )


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _new_order_nb(
    book,
    cycle: int,
    strategy: int,
    sym: int,
    side: int,
    otype: int,
    tif: int,
    role: int,
    qty: float,
    ts: int,
    bar: int,
) -> int:
    k = book.ctr[N_ORDERS]
    book.ctr[N_ORDERS] = k + 1
    o = book.orders[k]
    o.id = k
    o.cycle = cycle
    o.strategy = strategy
    o.sym = sym
    o.side = side
    o.otype = otype
    o.tif = tif
    o.role = role
    o.status = CREATED
    o.reduce_only = False
    o.leg_no = 0
    o.qty = qty
    o.filled = 0.0
    o.avg_fill = np.nan
    o.limit_px = np.nan
    o.stop_px = np.nan
    o.trail_amt = 0.0
    o.trail_pct = 0.0
    o.water = np.nan
    o.leg_stop = np.nan
    o.leg_target = np.nan
    o.leg_stop_pct = np.nan
    o.leg_target_pct = np.nan
    o.parent = -1
    o.sibling = -1
    o.live_from = bar + 1
    o.live_session = -1
    o.created_ts = ts
    o.created_bar = bar
    o.done_ts = -1
    o.reasons = 0
    o.leg_sl = -1
    o.leg_tp = -1
    o.seen_bar = -1
    return k


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def accept_order_nb(book, k: int) -> bool:
    """Submit and accept order ``k`` into its symbol's working list (or reject it: full)."""
    s = np.int64(book.orders[k].sym)
    set_status_nb(book, k, SUBMITTED)
    n = book.nwork[s]
    if n >= book.work.shape[1]:
        compact_working_nb(book, s)  # filled/cancelled orders free their slot
        n = book.nwork[s]
    accepted = n < book.work.shape[1]
    if accepted:
        set_status_nb(book, k, ACCEPTED)
        book.work[s, n] = k
        book.nwork[s] = n + 1
        refresh_band_nb(book, s)
    else:
        set_status_nb(book, k, REJECTED)
        book.orders[k].reasons |= R_TOO_MANY_WORKING
        book.orders[k].done_ts = book.orders[k].created_ts
    return accepted


@kernel
def cancel_order_nb(book, k: int, ts: int, reasons: int) -> None:
    """Cancel a working order with the reasons that caused it."""
    if not is_terminal_nb(book.orders[k].status):
        set_status_nb(book, k, CANCELED)
        book.orders[k].done_ts = ts
        book.orders[k].reasons |= reasons


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def working_stop_leg_nb(book, s: int) -> int:
    """Id of the symbol's working protective stop leg (the oldest), or -1 when none."""
    for j in range(book.nwork[s]):
        k = book.work[s, j]
        o = book.orders[k]
        if not is_terminal_nb(o.status) and (o.role == ROLE_STOP_LOSS or o.role == ROLE_TRAILING):
            return k
    return -1


@kernel
def amend_stop_nb(book, k: int, stop_px: float, reasons: int) -> None:
    """Move a working stop leg's trigger (the caller decided it only tightens)."""
    if is_terminal_nb(book.orders[k].status):
        return
    book.orders[k].stop_px = stop_px
    book.orders[k].reasons |= reasons
    refresh_band_nb(book, np.int64(book.orders[k].sym))


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def compact_working_nb(book, s: int) -> None:
    """Drop terminal orders from a symbol's working list, keeping id order."""
    n = book.nwork[s]
    w = 0
    for j in range(n):
        k = book.work[s, j]
        if not is_terminal_nb(book.orders[k].status):
            book.work[s, w] = k
            w += 1
    for j in range(w, n):
        book.work[s, j] = -1
    book.nwork[s] = w


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def refresh_band_nb(book, s: int) -> None:
    """Recompute symbol ``s``'s trigger band from its working orders.

    The backtest loop's pre-check: most bars leave every working order alone (a bracket
    resting far from the price), and a bar goes to the full matcher only if its low reaches
    ``band[s, 0]`` or its high reaches ``band[s, 1]``. Checking the band costs two loads of one
    small array and no branch on how many orders a symbol has; walking the orders instead
    was a mispredicted branch and a scattered record load per bar held on many-symbol data.

    The band may say yes for nothing (an order not live yet, one filled since): the matcher
    then changes nothing, exactly as when the event driver runs it on every bar. It must
    never say no where an order could change, so every change that can widen it (an order
    accepted, a stop amended, anything inside ``process_bar_nb``) refreshes it. Market,
    trailing-stop and non-GTC orders act on every bar: they open the band completely.
    """
    lo = -np.inf
    hi = np.inf
    for j in range(book.nwork[s]):
        o = book.orders[book.work[s, j]]
        if is_terminal_nb(o.status):
            continue
        ot = o.otype
        if ot in (MARKET, TRAILING_STOP) or o.tif != GTC:
            lo = np.inf
            hi = -np.inf
        elif ot == LIMIT:
            # a buy limit fills on a low at or under it, a sell limit on a high at or over it
            if o.side > 0:
                if o.limit_px > lo:
                    lo = o.limit_px
            elif o.limit_px < hi:
                hi = o.limit_px
        elif o.side > 0:  # stops and stop-limits trigger on their stop level
            if o.stop_px < hi:
                hi = o.stop_px
        elif o.stop_px > lo:
            lo = o.stop_px
    book.band[s, 0] = lo
    book.band[s, 1] = hi


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def working_summary_nb(book, s: int) -> tuple[int, int, float]:
    """Return (working entry orders, side of the last of them (0: none), unfilled quantity of
    working plain exits) for a symbol."""
    entries = 0
    entry_side = 0
    exit_qty = 0.0
    for j in range(book.nwork[s]):
        o = book.orders[book.work[s, j]]
        if is_terminal_nb(o.status):
            continue
        if o.role == ROLE_ENTRY:
            entries += 1
            entry_side = o.side
        elif o.role == ROLE_SIGNAL_EXIT or o.role >= ROLE_TIME_STOP:
            exit_qty += o.qty - o.filled
    return entries, entry_side, exit_qty


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def pending_entries_nb(book, out) -> None:
    """Write the signed unfilled quantity of every symbol's working entry orders to ``out``."""
    for s in range(len(book.nwork)):
        out[s] = 0.0
        for j in range(book.nwork[s]):
            o = book.orders[book.work[s, j]]
            if o.role == ROLE_ENTRY and not is_terminal_nb(o.status):
                out[s] += o.side * (o.qty - o.filled)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _record_fill_nb(
    book,
    k: int,
    qty: float,
    price: float,
    fee: float,
    slip: float,
    ts: int,
    bar: int,
    ambiguous: bool,
    alt_stop: float,
    alt_target: float,
    alt_prox: float,
) -> int:
    f = book.ctr[N_FILLS]
    book.ctr[N_FILLS] = f + 1
    o = book.orders[k]
    r = book.fills[f]
    r.id = f
    r.order = k
    r.cycle = o.cycle
    r.strategy = o.strategy
    r.sym = o.sym
    r.side = o.side
    r.role = o.role
    r.ambiguous = ambiguous
    r.qty = qty
    r.price = price
    r.fee = fee
    r.slippage = slip
    r.ts = ts
    r.bar = bar
    r.alt_stop_first = alt_stop
    r.alt_target_first = alt_target
    r.alt_open_proximity = alt_prox
    return f


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _make_legs_nb(
    book,
    prm,
    tick: float,
    k: int,
    qty: float,
    ts: int,
    bar: int,
    at_open: bool,
) -> None:
    """Give a filled entry its OCO protective legs, or grow them with a further partial fill.

    If its legs are gone (cancelled or rejected) when more of the entry fills, the new fill
    gets a fresh OCO pair: a filled entry is never left unprotected.
    """
    o = book.orders[k]
    fresh = o.leg_sl >= 0 or o.leg_tp >= 0  # a pair existed: the new one takes new numbers
    if fresh:
        alive = True
        for leg in (o.leg_sl, o.leg_tp):
            if leg >= 0 and is_terminal_nb(book.orders[leg].status):
                alive = False
        if alive:
            for leg in (o.leg_sl, o.leg_tp):
                if leg >= 0:
                    book.orders[leg].qty += qty
            return
    p = o.avg_fill
    s = o.sym
    stop = o.leg_stop
    if np.isnan(stop) and not np.isnan(o.leg_stop_pct):
        stop = p * (1.0 - o.side * o.leg_stop_pct)
    target = o.leg_target
    if np.isnan(target) and not np.isnan(o.leg_target_pct):
        target = p * (1.0 + o.side * o.leg_target_pct)
    live = bar if (at_open and prm.legs_live_on_entry_bar) else bar + 1
    sl = -1
    tp = -1
    if not np.isnan(stop) or o.trail_pct > 0:
        trailing = o.trail_pct > 0
        sl = alloc_order_nb(
            book,
            o.cycle,
            o.strategy,
            s,
            -o.side,
            TRAILING_STOP if trailing else STOP,
            GTC,
            ROLE_TRAILING if trailing else ROLE_STOP_LOSS,
            qty,
            ts,
            bar,
        )
        leg = book.orders[sl]
        leg.stop_px = round_to_tick_nb(stop, tick)
        if trailing:
            leg.trail_pct = o.trail_pct
            leg.water = p
            leg.stop_px = round_to_tick_nb(
                trailing_level_nb(leg.side, p, leg.trail_amt, leg.trail_pct), tick
            )
        leg.reduce_only = True
        leg.parent = k
        leg.leg_no = FIRST_FREE_LEG + 2 * bar + (o.leg_no == 3) if fresh else o.leg_no + 1
        leg.live_from = live
    if not np.isnan(target):
        tp = alloc_order_nb(
            book, o.cycle, o.strategy, s, -o.side, LIMIT, GTC, ROLE_TAKE_PROFIT, qty, ts, bar
        )
        leg = book.orders[tp]
        leg.limit_px = round_to_tick_nb(target, tick)
        leg.reduce_only = True
        leg.parent = k
        leg.leg_no = FIRST_FREE_LEG + 2 * bar + (o.leg_no == 3) if fresh else o.leg_no + 2
        leg.live_from = live
    if sl >= 0 and tp >= 0:
        book.orders[sl].sibling = tp
        book.orders[tp].sibling = sl
    o.leg_sl = sl
    o.leg_tp = tp
    if sl >= 0:
        accept_order_nb(book, sl)
    if tp >= 0:
        accept_order_nb(book, tp)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _sync_reduce_only_nb(book, s: int, ts: int) -> None:
    """Shrink or cancel working reduce-only orders so they never exceed the position held."""
    held = abs(book.xpos[s])
    sign = 1 if book.xpos[s] > 0 else (-1 if book.xpos[s] < 0 else 0)
    for j in range(book.nwork[s]):
        k = book.work[s, j]
        o = book.orders[k]
        if is_terminal_nb(o.status) or not o.reduce_only:
            continue
        if held == 0.0 or o.side == sign:
            cancel_order_nb(book, k, ts, R_LEG_CANCELED_FLAT)
        elif o.qty - o.filled > held + 1e-12:
            o.qty = o.filled + held
            o.reasons |= R_LEG_RESIZED


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def fill_order_nb(
    book,
    prm,
    tick: float,
    lot: float,
    mult: float,
    k: int,
    price: float,
    slip: bool,
    volume: float,
    ts: int,
    bar: int,
    at_open: bool,
    ambiguous: bool,
    alt_stop: float,
    alt_target: float,
    alt_prox: float,
) -> int:
    """Fill what can be filled of order ``k`` at ``price``; return the fill id or -1.

    Applies reduce-only clamping, the volume-participation cap, slippage and commission, then
    the consequences: OCO sibling cancelled, legs created or grown, reduce-only orders synced.
    """
    o = book.orders[k]
    s = o.sym
    want = o.qty - o.filled
    if o.reduce_only:
        pos = book.xpos[s]
        reduces = (pos > 0 and o.side < 0) or (pos < 0 and o.side > 0)
        if not reduces:
            cancel_order_nb(book, k, ts, R_LEG_CANCELED_FLAT)
            want = 0.0
        elif want > abs(pos):
            want = abs(pos)
    if want > 0.0 and prm.max_participation > 0.0:
        room = prm.max_participation * volume - book.used_vol[s]
        room = np.floor(room / lot + 1e-9) * lot
        if room < want:
            want = room
    f = -1
    if want > 0.0:
        px = slipped_nb(o.side, price, prm.slip_kind, prm.slip_value, tick) if slip else price
        fee = commission_nb(prm.fee_kind, prm.fee_rate, prm.fee_min, want, px, mult)
        f = _record_fill_nb(
            book,
            k,
            want,
            px,
            fee,
            abs(px - price),
            ts,
            bar,
            ambiguous,
            alt_stop,
            alt_target,
            alt_prox,
        )
        prev = o.filled
        o.filled = prev + want
        o.avg_fill = px if prev == 0.0 else (o.avg_fill * prev + px * want) / o.filled
        book.xpos[s] += o.side * want
        book.used_vol[s] += want
        if o.filled >= o.qty - 1e-12:
            set_status_nb(book, k, FILLED)
            o.done_ts = ts
            if o.sibling >= 0:
                cancel_order_nb(book, o.sibling, ts, R_OCO_SIBLING_FILLED)
        else:
            set_status_nb(book, k, PARTIALLY_FILLED)
        if book.ctr[VENUE_ONLY] != 0:
            return f  # port orders: legs, remainder cancels and reduce-only fitting come
            # from the core's bracket manager as commands
        if o.parent >= 0 and not is_terminal_nb(book.orders[o.parent].status):
            # the bracket already exited: a later fill of the entry's remainder would be unprotected
            cancel_order_nb(book, o.parent, ts, R_ENTRY_REMAINDER_CANCELED)
        if o.parent >= 0 and book.xpos[s] == 0.0:
            # a protective leg closed the position: the cycle's other entries (a scale-in add
            # waiting for its pullback) must not reopen it
            for j in range(book.nwork[s]):
                w = book.work[s, j]
                other = book.orders[w]
                if (
                    other.role == ROLE_ENTRY
                    and other.cycle == o.cycle
                    and not is_terminal_nb(other.status)
                ):
                    cancel_order_nb(book, w, ts, R_ENTRY_REMAINDER_CANCELED)
        if o.role == ROLE_ENTRY:
            _make_legs_nb(book, prm, tick, k, want, ts, bar, at_open)
        _sync_reduce_only_nb(book, s, ts)
    return f


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _level_of_nb(o) -> float:
    """The price that triggers or fills an order (a trailing stop's current level is kept,
    tick-rounded, in its stop_px)."""
    if o.otype == LIMIT:
        return o.limit_px
    return o.stop_px


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _is_stop_type_nb(otype: int) -> bool:
    return otype in (STOP, STOP_LIMIT, TRAILING_STOP)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _open_price_nb(o, open_: float) -> tuple[float, bool, bool]:
    """(price, slippage applies, stop-limit triggered beyond its limit) at the open print."""
    ot = o.otype
    if ot == MARKET:
        return open_, True, False
    if ot == LIMIT:
        return limit_at_open_nb(o.side, o.limit_px, open_), False, False
    if ot in (STOP, TRAILING_STOP):
        return stop_at_open_nb(o.side, _level_of_nb(o), open_), True, False
    if ot == STOP_LIMIT and not np.isnan(stop_at_open_nb(o.side, o.stop_px, open_)):
        px = limit_at_open_nb(o.side, o.limit_px, open_)
        return px, False, np.isnan(px)
    return np.nan, False, False


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _intrabar_price_nb(o, high: float, low: float) -> tuple[float, bool, bool]:
    """(price, slippage applies, stop-limit triggered beyond its limit) inside the bar."""
    ot = o.otype
    if ot == LIMIT:
        return limit_intrabar_nb(o.side, o.limit_px, high, low), False, False
    if ot in (STOP, TRAILING_STOP):
        return stop_intrabar_nb(o.side, _level_of_nb(o), high, low), True, False
    if ot == STOP_LIMIT:
        # the open phase already handled a trigger at the open: here it triggers at its level
        triggered, px = stop_limit_nb(o.side, o.stop_px, o.limit_px, o.stop_px, high, low)
        return px, False, triggered and np.isnan(px)
    return np.nan, False, False


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _open_order_nb(book, prm, tick, lot, mult, k, i, ts, o_, v, session) -> bool:
    """Order ``k`` at bar ``i``'s open print; return whether it was filled (or tried to be:
    a reduce-only order with nothing to reduce is cancelled instead)."""
    o = book.orders[k]
    if is_terminal_nb(o.status) or o.live_from > i:
        return False
    if o.tif == DAY:
        if o.live_session < 0:
            o.live_session = session
        elif o.live_session != session:
            set_status_nb(book, k, EXPIRED)
            o.done_ts = ts
            o.reasons |= R_ORDER_EXPIRED
            return False
    px, slip, rest_as_limit = _open_price_nb(o, o_)
    if rest_as_limit:
        o.otype = LIMIT  # triggered beyond its limit: rests as a limit from the next bar
        o.live_from = i + 1
        return False
    if np.isnan(px):
        return False
    fill_order_nb(
        book,
        prm,
        tick,
        lot,
        mult,
        k,
        px,
        slip,
        v,
        ts,
        i,
        AT_OPEN,
        NOT_AMBIGUOUS,
        np.nan,
        np.nan,
        np.nan,
    )
    return True


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _open_phase_nb(book, prm, tick, lot, mult, s, i, ts, o_, v, session) -> None:
    j = 0
    while j < book.nwork[s]:
        k = book.work[s, j]
        j += 1
        _open_order_nb(book, prm, tick, lot, mult, k, i, ts, o_, v, session)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _intrabar_order_nb(book, prm, tick, lot, mult, k, i, ts, o_, h, l, v) -> bool:
    """Order ``k`` (and its OCO sibling) inside bar ``i``; return whether one was filled."""
    o = book.orders[k]
    if is_terminal_nb(o.status) or o.live_from > i or o.otype == MARKET or o.seen_bar == i:
        return False
    o.seen_bar = i
    sib = o.sibling
    amb = False
    alt_s = np.nan
    alt_t = np.nan
    alt_p = np.nan
    fill_k = k
    if sib < 0 or is_terminal_nb(book.orders[sib].status) or book.orders[sib].live_from > i:
        px, slip, rest_as_limit = _intrabar_price_nb(o, h, l)
        if rest_as_limit:
            o.otype = LIMIT
            o.live_from = i + 1
            return False
    else:
        book.orders[sib].seen_bar = i
        ks = k if _is_stop_type_nb(o.otype) else sib
        kt = sib if ks == k else k
        st = book.orders[ks]
        tg = book.orders[kt]
        stop_lvl = _level_of_nb(st)
        hit_stop = stop_touched_nb(st.side, stop_lvl, h, l)
        hit_target = limit_touched_nb(tg.side, tg.limit_px, h, l)
        stop_wins = hit_stop
        if hit_stop and hit_target:
            amb = True
            alt_s = slipped_nb(st.side, stop_lvl, prm.slip_kind, prm.slip_value, tick)
            alt_t = tg.limit_px
            stop_nearer = abs(o_ - stop_lvl) <= abs(tg.limit_px - o_)
            alt_p = alt_s if stop_nearer else alt_t
            stop_wins = prm.intrabar == INTRABAR_STOP_FIRST or (
                prm.intrabar == INTRABAR_OPEN_PROXIMITY and stop_nearer
            )
        if stop_wins:
            fill_k = ks
            px, slip = stop_lvl, True
        elif hit_target:
            fill_k = kt
            px, slip = tg.limit_px, False
        else:
            px, slip = np.nan, False
    if np.isnan(px):
        return False
    fill_order_nb(
        book,
        prm,
        tick,
        lot,
        mult,
        fill_k,
        px,
        slip,
        v,
        ts,
        i,
        INTRABAR,
        amb,
        alt_s,
        alt_t,
        alt_p,
    )
    return True


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _intrabar_phase_nb(book, prm, tick, lot, mult, s, i, ts, o_, h, l, v) -> None:
    j = 0
    while j < book.nwork[s]:
        k = book.work[s, j]
        j += 1
        _intrabar_order_nb(book, prm, tick, lot, mult, k, i, ts, o_, h, l, v)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, inline="always")
def _close_phase_nb(book, tick, s, i, ts, h, l) -> None:
    for j in range(book.nwork[s]):
        k = book.work[s, j]
        o = book.orders[k]
        if is_terminal_nb(o.status) or o.live_from > i:
            continue
        if o.otype == TRAILING_STOP:
            o.water = trailing_water_nb(o.side, o.water, h, l)
            level = round_to_tick_nb(
                trailing_level_nb(o.side, o.water, o.trail_amt, o.trail_pct), tick
            )
            # a trailing stop only ever tightens
            if (o.side < 0 and level > o.stop_px) or (o.side > 0 and level < o.stop_px):
                o.stop_px = level
        if o.tif == IOC:
            cancel_order_nb(book, k, ts, R_ORDER_EXPIRED)


@kernel
def process_bar_nb(
    book,
    prm,
    tick: float,
    lot: float,
    mult: float,
    s: int,
    i: int,
    ts: int,
    o_: float,
    h: float,
    l: float,
    v: float,
    session: int,
) -> None:
    """Match symbol ``s``'s working orders against its bar at row ``i`` (see module doc).

    ``tick``, ``lot`` and ``mult`` are symbol ``s``'s contract numbers. Kernels of one symbol
    take scalars, not the per-symbol arrays: numba increfs and decrefs every array argument
    on each call, an atomic each, which cost more than the matching itself."""
    book.used_vol[s] = 0.0
    _open_phase_nb(book, prm, tick, lot, mult, s, i, ts, o_, v, session)
    _intrabar_phase_nb(book, prm, tick, lot, mult, s, i, ts, o_, h, l, v)
    _close_phase_nb(book, tick, s, i, ts, h, l)
    compact_working_nb(book, s)
    refresh_band_nb(book, s)
