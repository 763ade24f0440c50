"""The bar step both drivers call: guardrail work after a bar was matched and marked.

After bar ``i`` of symbol ``s``: closed trades feed the learning loop, the loss streaks and
their strategy's own P&L, the day rolls, account triggers may trip the kill switch (and a
strategy with its own table is judged on its own P&L, ``own_pnl``), shadow trades settle,
and the exit manager may ask for an exit. What that asks the driver to *do* (cancel entries
and flatten after a kill, send a reduce-only exit) happens in the driver's own world: the
fused backtest loop writes into the simulated book, the event driver sends order commands
through the broker port. So the step is resumable: it runs until it needs an action, returns
the action with a cursor, and the driver calls it again from the cursor once the action is
done. The order of checks, and therefore of verdicts, is the same in both drivers by
construction.

The cursor is ``(t, phase)``: the next closed trade to book and the next check to run.
``pos`` is the symbol's position as the driver knows it now (the book's in the fused loop,
the broker mirror's in the event driver); only the exit manager reads it.
"""

from __future__ import annotations

import numpy as np

from backstop.engine.core.ahead import kernel
from backstop.engine.core.guard import (
    AI_DAY,
    on_trade_closed_nb,
    start_day_nb,
    update_shadows_nb,
)
from backstop.engine.core.own_pnl import book_own_trade_nb, own_bar_checks_nb, own_day_start_nb
from backstop.engine.core.portfolio import equity_nb
from backstop.engine.core.records import N_TRADES, RTI_ENTRY_TS
from backstop.engine.core.riskslots import KL_CONSEC
from backstop.engine.core.supervise import (
    NEED_EQUITY,
    NEED_EXITS,
    NEED_SHADOWS,
    account_checks_nb,
    exit_rule_nb,
    trip_kill_nb,
    value_of_kill_nb,
)

# What the step asks its driver to do before calling it again.
ACT_DONE = np.int64(0)  # nothing left for this bar
ACT_KILL = np.int64(1)  # the kill switch tripped: cancel working entries, flatten per policy
ACT_EXIT = np.int64(2)  # the exit manager fired: send a reduce-only exit (role, reason)

# Phases of the step, in the order they run.
PH_TRADES = np.int64(0)
PH_DAY = np.int64(1)
PH_ACCOUNT = np.int64(2)
PH_SHADOWS = np.int64(3)
PH_EXITS = np.int64(4)
PH_END = np.int64(5)

NONE = np.int64(0)


@kernel
def bar_step_nb(
    pf, g, rp, day: int, quality: float, close_ns: int, needs: int, s: int, i: int, ts: int,
    high: float, low: float, pos: float, t: int, phase: int,
) -> tuple[int, int, int, int, int]:  # fmt: skip
    """Run the bar's guardrail work from cursor ``(t, phase)`` until an action is needed.

    Returns ``(t, phase, action, role, reason)``: the cursor to resume from, the action
    (``ACT_*``), and for ``ACT_EXIT`` the exit's role and reason code. ``day``, ``quality``
    and ``close_ns`` are the bar's context (scalars: see ``handle_signal_nb``).
    """
    t = np.int64(t)
    phase = np.int64(phase)
    action = ACT_DONE
    role = NONE
    reason = NONE
    equity = np.nan
    if phase == PH_TRADES:
        # a closed trade reads equity only for the big-loss streak (and the kill it may
        # trip): without that trigger, no equity per closed trade
        big_losses = rp[KL_CONSEC] == rp[KL_CONSEC]
        n_trades = pf.ctr[N_TRADES]
        while t < n_trades and action == ACT_DONE:
            tr = pf.trades[t]
            if needs & NEED_EQUITY or (big_losses and equity != equity):
                equity = equity_nb(pf)
            book_own_trade_nb(g, tr.strategy, tr.pnl - tr.fees)
            cause = on_trade_closed_nb(g, rp, tr.strategy, tr.sym, tr.pnl, equity, ts, i, tr.cycle)
            t += 1
            if trip_kill_nb(g, cause, ts, i, equity):
                action = ACT_KILL
        if action == ACT_DONE:
            phase = PH_DAY
    if action == ACT_DONE and phase == PH_DAY:
        if day > g.ai[AI_DAY]:
            equity = equity_nb(pf)
            start_day_nb(g, day, ts, i, equity)
            own_day_start_nb(g, pf.pos, pf.avg, pf.mark, pf.mult)
        phase = PH_ACCOUNT
    if action == ACT_DONE and phase == PH_ACCOUNT:
        phase = PH_SHADOWS
        if needs & NEED_EQUITY:
            if equity != equity:
                equity = equity_nb(pf)
            cause = account_checks_nb(g, rp, equity, quality, ts, i)
            own_bar_checks_nb(g, rp, pf.pos, pf.avg, pf.mark, pf.mult, ts, i)
            if trip_kill_nb(g, cause, ts, i, value_of_kill_nb(g, cause, equity, quality)):
                action = ACT_KILL
    if action == ACT_DONE and phase == PH_SHADOWS:
        if needs & NEED_SHADOWS:
            update_shadows_nb(g, rp, s, high, low, ts, i)
        phase = PH_EXITS
    if action == ACT_DONE and phase == PH_EXITS:
        phase = PH_END
        if needs & NEED_EXITS:
            role, reason = exit_rule_nb(
                g, rp, s, pos, pf.avg[s], pf.mark[s], pf.rti[s, RTI_ENTRY_TS], ts, close_ns,
                high, low,
            )  # fmt: skip
            if role != 0:
                action = ACT_EXIT
    return t, phase, action, np.int64(role), np.int64(reason)
