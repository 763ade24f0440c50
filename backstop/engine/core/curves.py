"""Per-row positions and the equity curve of a finished run, from its fills (one pass each).

The result frames of both drivers are built from these: they read the records a run kept,
never a venue's book.
"""

from __future__ import annotations

import numpy as np

from backstop.engine.core.ahead import kernel


@kernel
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


@kernel
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
        s = np.int64(sym[i])
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
