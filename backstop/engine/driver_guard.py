"""The event driver's supervision after each bar, and what a tripped kill switch or an exit
rule sends.

The decisions are the engine's bar step (``core/bar_step.py``), the kernel the backtest loop
calls too; only the hands are here: the kill switch cancels every working entry and flattens
per the policy, an exit rule sends a reduce-only exit, both as order commands through the
broker port. ``PortDriver`` calls these with itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from backstop.domain.commands import CancelOrder, OrderCommand
from backstop.domain.enums import OrderRole, Side
from backstop.engine.core.bar_step import ACT_EXIT, ACT_KILL, PH_END, PH_TRADES, bar_step_nb
from backstop.engine.core.codes import R_KILL_SWITCH_ACTIVE, R_KILL_SWITCH_FLATTEN, ROLE_KILL_SWITCH
from backstop.engine.core.decide import decide_exit_nb, engine_exit_event_nb, record_verdict_nb
from backstop.engine.core.guard import (
    note_order_nb,
)
from backstop.engine.core.records import N_TRADES, at_nb

if TYPE_CHECKING:
    from backstop.engine.driver import PortDriver


def supervise(
    driver: PortDriver, i: int, s: int, ts: int, high: float, low: float, t0: int, day: int
) -> None:
    """The engine's bar step (``core/bar_step.py``, the one the backtest loop calls too),
    with its actions carried out through order commands."""
    t, phase = t0, int(PH_TRADES)
    quality = float(at_nb(driver.ctx.quality, i))
    close_ns = int(at_nb(driver.ctx.close_ns, i))
    # each call ends with an action or the end: at most one per closed trade (fills that an
    # action brings at once may close more) and two more
    calls = 0
    while calls <= int(driver.pf.ctr[N_TRADES]) - t0 + 2:
        calls += 1
        t, phase, action, role, reason = bar_step_nb(
            driver.pf, driver.g, driver.rp, day, quality, close_ns, driver.needs, s, i, ts,
            high, low, driver._position(s), t, phase,
        )  # fmt: skip
        if action == ACT_KILL:
            driver._kill_actions(ts, i)
        elif action == ACT_EXIT:
            driver._engine_exit(s, int(role), int(reason), ts, i)
        if phase == PH_END:
            return
    raise AssertionError("the bar step did not finish")  # a bug: every call moves the cursor


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
    r, side, qty = decide_exit_nb(ev, pos, exit_qty, driver.rp, 1.0)  # all of it: no lot
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
