"""The event driver's supervision after each bar: closed trades, the day roll, account checks,
shadows and exit rules, and what a tripped kill switch or an exit rule sends.

``supervise_bar_nb`` of the backtest loop (``core/loop.py``), call for call, acting through
order commands instead of a book: the kill switch cancels every working entry and flattens
per the policy; an exit rule sends a reduce-only exit. ``PortDriver`` calls these with itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from backstop.domain.commands import CancelOrder, OrderCommand
from backstop.domain.enums import OrderRole, Side
from backstop.engine.core.codes import R_KILL_SWITCH_ACTIVE, R_KILL_SWITCH_FLATTEN, ROLE_KILL_SWITCH
from backstop.engine.core.decide import decide_exit_nb, engine_exit_event_nb, record_verdict_nb
from backstop.engine.core.guard import (
    note_order_nb,
    on_trade_closed_nb,
    start_day_nb,
    update_shadows_nb,
)
from backstop.engine.core.records import N_TRADES, RTI_ENTRY_TS, at_nb
from backstop.engine.core.supervise import (
    NEED_EQUITY,
    NEED_EXITS,
    NEED_SHADOWS,
    account_checks_nb,
    exit_rule_nb,
    trip_kill_nb,
    value_of_kill_nb,
)

if TYPE_CHECKING:
    from backstop.engine.driver import PortDriver


def supervise(
    driver: PortDriver, i: int, s: int, ts: int, high: float, low: float, t0: int, day: int
) -> None:
    """``supervise_bar_nb`` of the backtest loop, acting through order commands."""
    g, rp, pf = driver.g, driver.rp, driver.pf
    for t in range(t0, int(pf.ctr[N_TRADES])):
        tr = pf.trades[t]
        equity = driver._equity()
        cause = on_trade_closed_nb(
            g, rp, tr["strategy"], tr["sym"], tr["pnl"], equity, ts, i, tr["cycle"]
        )
        if trip_kill_nb(g, cause, ts, i, equity):
            driver._kill_actions(ts, i)
    if day > g.ai[0]:
        start_day_nb(g, day, ts, i, driver._equity())
    if driver.needs & NEED_EQUITY:
        equity = driver._equity()
        q = float(at_nb(driver.ctx.quality, i))
        cause = account_checks_nb(g, rp, equity, q, ts, i)
        if trip_kill_nb(g, cause, ts, i, value_of_kill_nb(g, cause, equity, q)):
            driver._kill_actions(ts, i)
    if driver.needs & NEED_SHADOWS:
        update_shadows_nb(g, rp, s, high, low, ts, i)
    if driver.needs & NEED_EXITS:
        role, reason = exit_rule_nb(
            g,
            rp,
            s,
            driver._position(s),
            pf.avg[s],
            pf.mark[s],
            pf.rti[s, RTI_ENTRY_TS],
            ts,
            at_nb(driver.ctx.close_ns, i),
            high,
            low,
        )
        if role != 0:
            driver._engine_exit(s, int(role), int(reason), ts, i)


def kill_actions(driver: PortDriver, ts: int, bar: int) -> None:
    """Kill switch activation: cancel every working entry, then flatten per the policy."""
    for s in range(len(driver.symbols)):
        cancels: list[OrderCommand] = [
            CancelOrder(o.client_order_id, ts, int(R_KILL_SWITCH_ACTIVE))
            for o in driver.mirror.working(driver.symbols[s])
            if o.role == OrderRole.ENTRY
        ]
        driver._dispatch(cancels)
        if driver.flatten:
            driver._engine_exit(s, int(ROLE_KILL_SWITCH), int(R_KILL_SWITCH_FLATTEN), ts, bar)
    driver.on_broker_events()


def engine_exit(driver: PortDriver, s: int, role: int, reason: int, ts: int, bar: int) -> None:
    """An exit the exit manager or the kill switch asked for (``engine_exit_nb``)."""
    symbol = driver.symbols[s]
    pos = driver._position(s)
    if pos == 0.0:
        return
    _, _, exit_qty = driver._working(s)
    ev = engine_exit_event_nb(driver.g, driver.pf, s, -1 if pos > 0 else 1, role, ts, bar)
    r, side, qty = decide_exit_nb(ev, pos, exit_qty, driver.rp)
    if side == 0:
        return
    cmds = driver.brackets.exit(
        driver.mirror, cycle=int(ev["seq"]), strategy=int(ev["strategy"]), symbol=symbol,
        side=Side(int(side)), qty=float(qty), role=OrderRole(role), ts=ts, bar=bar,
        reasons=reason,
    )  # fmt: skip
    driver._dispatch(cmds)
    order = driver.mirror.orders[cmds[-1].client_order_id].order_no
    note_order_nb(driver.g, ts)
    driver.on_broker_events()
    d = (reason | int(r), side, qty, driver.pf.mark[s], np.nan, np.nan, 0.0, np.nan, np.nan)
    record_verdict_nb(driver.dec, ev, -1, True, d, pos, np.nan, order, driver.g, driver.rp)
