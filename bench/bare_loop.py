"""The WORKLOAD rules as one bare numba loop: no engine, no journal, no records.

This is the practical speed limit the issue measures backstop against ("within 3x of the
bare loop"): SMAs as running sums, crosses, next-open market fills, a stop-first OCO bracket
live on the entry bar, gap fills at the open, signal exits at the next open, 100 shares.

    python bench/bare_loop.py FILE.parquet [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import polars as pl
from numba import njit


@njit(cache=True)
def bare_workload_nb(sym, open_, high, low, close, n_sym, fast, slow, stop_pct, target_pct, qty):
    """Return (round trips, P&L) of the WORKLOAD rules over rows sorted by (ts, symbol)."""
    width = max(fast, slow)
    ring = np.zeros((n_sym, width))
    count = np.zeros(n_sym, dtype=np.int64)
    sf = np.zeros(n_sym)
    ss = np.zeros(n_sym)
    pf = np.full(n_sym, np.nan)
    ps = np.full(n_sym, np.nan)
    pos = np.zeros(n_sym, dtype=np.bool_)
    entry = np.zeros(n_sym)
    stop = np.zeros(n_sym)
    target = np.zeros(n_sym)
    pending_entry = np.zeros(n_sym, dtype=np.bool_)
    pending_exit = np.zeros(n_sym, dtype=np.bool_)
    trips = 0
    pnl = 0.0
    for i in range(len(close)):
        s = sym[i]
        o = open_[i]
        if pending_entry[s]:
            pending_entry[s] = False
            pos[s] = True
            entry[s] = o
            stop[s] = o * (1.0 - stop_pct)
            target[s] = o * (1.0 + target_pct)
        if pos[s]:
            px = np.nan
            if pending_exit[s] or o <= stop[s] or o >= target[s]:
                px = o  # signal exit, or a gap through either level: the open
            elif low[i] <= stop[s]:
                px = stop[s]
            elif high[i] >= target[s]:
                px = target[s]
            pending_exit[s] = False
            if not np.isnan(px):
                pos[s] = False
                trips += 1
                pnl += (px - entry[s]) * qty
        c = count[s]
        x = close[i]
        if c >= fast:
            sf[s] -= ring[s, (c - fast) % width]
        if c >= slow:
            ss[s] -= ring[s, (c - slow) % width]
        ring[s, c % width] = x
        sf[s] += x
        ss[s] += x
        c += 1
        count[s] = c
        if c >= slow and c >= fast:
            f = sf[s] / fast
            sl = ss[s] / slow
            if not np.isnan(pf[s]):
                if f > sl and pf[s] <= ps[s] and not pos[s]:
                    pending_entry[s] = True
                elif f < sl and pf[s] >= ps[s] and pos[s]:
                    pending_exit[s] = True
            pf[s] = f
            ps[s] = sl
    return trips, pnl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    bars = pl.read_parquet(args.data).sort(["ts", "symbol"], maintain_order=True)
    symbols = sorted(bars.get_column("symbol").unique().to_list())
    sym = bars.get_column("symbol").cast(pl.Enum(symbols)).to_physical().to_numpy().astype(np.int64)
    cols = [
        np.ascontiguousarray(bars.get_column(c).to_numpy())
        for c in ("open", "high", "low", "close")
    ]
    t = time.perf_counter()
    bare_workload_nb(sym, *cols, len(symbols), 10, 50, 0.01, 0.02, 100.0)
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        trips, pnl = bare_workload_nb(sym, *cols, len(symbols), 10, 50, 0.01, 0.02, 100.0)
        best = min(best, time.perf_counter() - t)
    print(
        json.dumps(
            {
                "engine": "bare_numba_loop",
                "bars": bars.height,
                "symbols": len(symbols),
                "round_trips": int(trips),
                "pnl": round(float(pnl), 6),
                "first_run_seconds": round(first, 6),
                "run_seconds": round(best, 6),
                "bars_per_second": round(bars.height / best),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
