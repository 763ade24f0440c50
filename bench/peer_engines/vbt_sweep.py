"""vectorbt's native parameter sweep of the workload: every (fast, slow) pair as a column.

Runs under the peers virtual environment only (``bench/.peers-venv``); ``sweep_compare.py``
starts it as a child process and reads one JSON line. The grid is expressed the way
vectorbt's own examples do it: ``MA.run`` with one window per column (the fast windows
repeated, the slow ones tiled, so column k is the k-th (fast, slow) pair of the product),
``ma_crossed_above`` / ``ma_crossed_below`` across the two indicators, then ONE
``Portfolio.from_signals`` call over all the columns. The trading rules and the stop
arguments are exactly those of the single-run adapter (``vbt.py``), so the same fills:
signals shifted one bar and filled at the next open, ``sl_stop``/``tp_stop`` from the fill
price, exits at the level or at the open on a gap, stop checked before the target.

Timed: both MAs over the grid, the crossovers and shifts, ``from_signals`` and the closed
trades' count and P&L per column. Loading the bars and building the frame are not timed. A
run over the first ``WARMUP_BARS`` bars comes first, so numba's compile time is reported
apart (``first_run_seconds``) and not counted in the grid time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .common import QTY, SL_PCT, TP_PCT, SymbolBars, load_parquet

WARMUP_BARS = 5_000


def _frame(s: SymbolBars, n: int | None = None) -> dict[str, pd.Series]:
    """One symbol's OHLC as pandas Series on a naive UTC index (see vbt.py for why naive)."""
    end = len(s) if n is None else n
    index = pd.DatetimeIndex(pd.to_datetime(s.ts[:end]), name="ts")
    return {
        f: pd.Series(getattr(s, f)[:end], index=index) for f in ("open", "high", "low", "close")
    }


def run_grid(
    bars: dict[str, pd.Series],
    fast: list[int],
    slow: list[int],
    engine: str,
    open_exit: bool = False,
) -> tuple[list[int], list[float]]:
    """Round trips and P&L of closed trades for each (fast, slow) pair, in product order.

    ``open_exit`` expresses the project's rule for a bar that opens with a signal exit (the
    exit takes the open; a leg touched later in that bar never trades): vectorbt checks
    its stops before the signal, so that bar's high and low are replaced by its open, per
    column. A stop or target the open gaps through still exits at the open, as in both rule
    sets. The masking is part of the timed work.
    """
    import vectorbt as vbt
    from vectorbt.portfolio.enums import StopEntryPrice, StopExitPrice

    fast_w = np.repeat(fast, len(slow))
    slow_w = np.tile(slow, len(fast))
    f = vbt.MA.run(bars["close"], window=fast_w.tolist(), short_name="fast")
    s = vbt.MA.run(bars["close"], window=slow_w.tolist(), short_name="slow")
    # Decided on bar t's close, executed at bar t+1's open.
    entries = f.ma_crossed_above(s).vbt.signals.fshift(1)
    exits = f.ma_crossed_below(s).vbt.signals.fshift(1)
    high: object = bars["high"]
    low: object = bars["low"]
    if open_exit:
        ex = exits.to_numpy()
        op = bars["open"].to_numpy()[:, None]
        high = np.where(ex, op, bars["high"].to_numpy()[:, None])
        low = np.where(ex, op, bars["low"].to_numpy()[:, None])
    pf = vbt.Portfolio.from_signals(
        bars["close"],
        entries,
        exits,
        price=bars["open"],
        open=bars["open"],
        high=high,
        low=low,
        size=float(QTY),
        size_type="amount",
        direction="longonly",
        accumulate=False,
        fees=0.0,
        slippage=0.0,
        init_cash=1e12,
        sl_stop=SL_PCT,
        tp_stop=TP_PCT,
        stop_entry_price=StopEntryPrice.FillPrice,
        stop_exit_price=StopExitPrice.StopLimit,
        engine=engine,
    )
    closed = pf.trades.closed
    counts = np.asarray(closed.count(), dtype=np.int64)
    pnls = np.asarray(closed.pnl.sum(), dtype=np.float64)
    return counts.tolist(), pnls.tolist()


def main(data: Path, fast: list[int], slow: list[int], variant: str) -> dict[str, object]:
    """Load, warm up on a prefix, then time the whole grid once.

    ``variant`` is the engine ("numba" or "rust"), with ``:open_exit`` for the project's
    signal-exit rule (see ``run_grid``)."""
    engine, _, rule = variant.partition(":")
    open_exit = rule == "open_exit"
    import vectorbt as vbt

    (sym,) = load_parquet(data)  # WORKLOAD M: one symbol
    t = time.perf_counter()
    full = _frame(sym)
    prepare_s = time.perf_counter() - t
    t = time.perf_counter()
    run_grid(_frame(sym, WARMUP_BARS), fast, slow, engine, open_exit)
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    trips, pnl = run_grid(full, fast, slow, engine, open_exit)
    grid_s = time.perf_counter() - t
    version = str(vbt.__version__)
    if engine == "rust":
        import vectorbt_rust

        version += f" (vectorbt-rust {vectorbt_rust.__version__})"
    return {
        "engine": f"vectorbt_{'nb' if engine == 'numba' else 'rs'}" + ("_open_exit" * open_exit),
        "open_exit": open_exit,
        "version": version,
        "bars": len(sym),
        "combos": len(trips),
        "grid_seconds": grid_s,
        "first_run_seconds": warm_s,
        "prepare_seconds": prepare_s,
        "round_trips": trips,
        "pnl": pnl,
        "python": sys.version.split()[0],
    }
