"""Execution quality (seed 001's EQS gate): how far a strategy's entry fills land from the
price its entries were decided at, and the gate that stops its entries when that degrades.

Each entry fill's adverse slippage against the decision price (bps of that price; positive
when the fill is worse: higher for a buy, lower for a sell) feeds an exponential average per
strategy over ``execution.window`` fills. Once ``execution.min_fills`` fills are scored, an
average above ``execution.max_slippage_bps`` refuses the strategy's entries
(EXECUTION_QUALITY) until better fills bring it back under. Both drivers call
``note_entry_fill_nb`` for every fill they book, so backtest and live score alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backstop.engine.core.ahead import kernel
from backstop.engine.core.codes import R_EXECUTION_QUALITY, ROLE_ENTRY
from backstop.engine.core.guard import SF_SLIP_BPS, SI_ENTRY_FILLS, YF_DECISION_PX
from backstop.engine.core.riskslots import EQ_MAX_SLIP, EQ_MIN_FILLS, EQ_WINDOW, N_RISK


@kernel
def note_entry_fill_nb(g, rp, fill) -> None:
    """Score one fill when it is an entry's: update its strategy's average slippage."""
    if fill.role != ROLE_ENTRY:
        return
    k = np.int64(fill.strategy)
    decided = g.yf[fill.sym, YF_DECISION_PX]
    if not decided > 0:
        return
    slip = (fill.price - decided) / decided * 1e4 * fill.side
    n = np.int64(N_RISK)
    block = n * (k + 1) if len(rp) >= n * (k + 2) else np.int64(0)
    alpha = 2.0 / (rp[block + EQ_WINDOW] + 1.0)
    if g.si[k, SI_ENTRY_FILLS] == 0:
        g.sf[k, SF_SLIP_BPS] = slip
    else:
        g.sf[k, SF_SLIP_BPS] += alpha * (slip - g.sf[k, SF_SLIP_BPS])
    g.si[k, SI_ENTRY_FILLS] += 1


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
def execution_gate_nb(g, rp, k: int) -> int:
    """EXECUTION_QUALITY while strategy ``k``'s scored slippage is past its limit."""
    lim = rp[EQ_MAX_SLIP]
    judged = g.si[k, SI_ENTRY_FILLS] >= rp[EQ_MIN_FILLS]
    if lim == lim and judged and g.sf[k, SF_SLIP_BPS] > lim:
        return R_EXECUTION_QUALITY
    return 0
