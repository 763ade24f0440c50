"""A strategy's own P&L curve, and the halts its own profile table judges on it.

Seed 000 asks for a "20% equity-drawdown halt (permanent pause), 5% daily-loss circuit (24h
pause)" per strategy: one strategy's losses pause it even while the account is up, and
another strategy's losses never pause it. So a strategy with a ``[strategy.NAME.*]`` table
(``SI_OWN``) is judged on its own numbers:

- its P&L: the net P&L of its closed round trips (``SF_REALIZED``, after fees) plus the open
  P&L of the positions its entries opened (the symbols whose last approved entry is its,
  ``YI_ENTRY_STRATEGY``), marked at the last price;
- its equity: its capital (``risk.strategy_capital``, else the account's starting equity)
  plus that P&L; its peak (``SF_PEAK_PNL``) and its equity when the day started
  (``SF_DAY_START_PNL``).

Its drawdown halt, daily-loss circuit and daily-loss limit compare those, when one of its
entries is decided and at every bar's close (as the account's do). A strategy without a
table of its own is judged on the account's numbers, as before.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.guard import (
    AF_START_EQUITY,
    K_CIRCUIT_PAUSED,
    K_DRAWDOWN_HALTED,
    SF_DAY_START_PNL,
    SF_PEAK_PNL,
    SF_REALIZED,
    SI_CIRCUIT_UNTIL,
    SI_DD_HALTED,
    SI_OWN,
    YI_ENTRY_STRATEGY,
    log_guard_nb,
)
from backstop.engine.core.riskslots import (
    N_RISK,
    RK_CIRCUIT_HOURS,
    RK_CIRCUIT_PCT,
    RK_DRAWDOWN_HALT,
    RK_STRATEGY_CAPITAL,
)

NS_PER_HOUR = 3600 * 1_000_000_000


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def strategy_pnl_nb(g, k: int, pos, avg, mark, mult) -> float:
    """Strategy ``k``'s P&L now: its closed trades' net P&L plus its open positions' P&L
    (``qty x (mark - average) x multiplier``; a symbol never marked adds nothing)."""
    total = g.sf[k, SF_REALIZED]
    for j in range(len(pos)):
        q = pos[j]
        m = mark[j]
        if q != 0.0 and m == m and g.yi[j, YI_ENTRY_STRATEGY] == k:
            total += q * (m - avg[j]) * mult[j]
    return total


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def strategy_capital_nb(g, rp) -> float:
    """The capital a strategy's own limits judge against: its ``risk.strategy_capital``,
    else the account's starting equity."""
    cap = rp[RK_STRATEGY_CAPITAL]
    return cap if cap == cap else g.af[AF_START_EQUITY]


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def judge_own_nb(g, rp, k: int, pnl: float, ts: int, bar: int) -> tuple[float, float]:
    """Note strategy ``k``'s P&L ``pnl`` and arm its own drawdown halt and daily-loss circuit
    from its block ``rp``; a trip pauses it alone and is journaled with its strategy and its
    number (its equity for the halt, its day's loss for the circuit).

    Returns (its loss today, its equity when the day started) for the daily-loss limit."""
    if pnl > g.sf[k, SF_PEAK_PNL]:
        g.sf[k, SF_PEAK_PNL] = pnl
    cap = strategy_capital_nb(g, rp)
    equity = cap + pnl
    lim = rp[RK_DRAWDOWN_HALT]
    peak = cap + g.sf[k, SF_PEAK_PNL]
    if lim == lim and g.si[k, SI_DD_HALTED] == 0 and equity <= peak * (1.0 - lim):
        g.si[k, SI_DD_HALTED] = 1
        log_guard_nb(g, ts, bar, K_DRAWDOWN_HALTED, k, -1, 0, equity, -1)
    start = cap + g.sf[k, SF_DAY_START_PNL]
    loss = start - equity
    lim = rp[RK_CIRCUIT_PCT]
    if lim == lim and loss >= lim * start and ts >= g.si[k, SI_CIRCUIT_UNTIL]:
        g.si[k, SI_CIRCUIT_UNTIL] = ts + np.int64(rp[RK_CIRCUIT_HOURS] * NS_PER_HOUR)
        log_guard_nb(g, ts, bar, K_CIRCUIT_PAUSED, k, -1, 0, loss, -1)
    return loss, start


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def own_bar_checks_nb(g, rp, pos, avg, mark, mult, ts: int, bar: int) -> None:
    """At a bar's close: judge every strategy with its own table on its own P&L (``rp`` is
    the whole profile array: the account's block, then one per strategy)."""
    n = np.int64(N_RISK)
    for k in range(g.si.shape[0]):
        if g.si[k, SI_OWN] != 0 and len(rp) >= n * (k + 2):
            pnl = strategy_pnl_nb(g, k, pos, avg, mark, mult)
            judge_own_nb(g, rp[n * (k + 1) : n * (k + 2)], k, pnl, ts, bar)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def own_day_start_nb(g, pos, avg, mark, mult) -> None:
    """At the day roll: each strategy's P&L now is where its day's loss is measured from."""
    for k in range(g.si.shape[0]):
        if g.si[k, SI_OWN] != 0:
            g.sf[k, SF_DAY_START_PNL] = strategy_pnl_nb(g, k, pos, avg, mark, mult)


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def book_own_trade_nb(g, k: int, net_pnl: float) -> None:
    """A closed round trip of strategy ``k`` adds its net P&L to the strategy's realized."""
    g.sf[k, SF_REALIZED] += net_pnl
