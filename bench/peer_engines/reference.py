"""A plain, obviously-correct simulation of the workload, to check the peers against.

It follows WORKLOAD.md literally, with the project's fill conventions (CONVENTIONS.md):
market orders fill at the next bar's open; the bracket legs are live on the entry bar
itself (after the open fill); at the open a gap through the stop or the target fills at the
open; inside the bar the stop is taken first when both levels are touched; a signal exit
fills at the open, before any leg could trade later in that bar. A position still open at
the end of the data is not a round trip and its P&L is not counted.

It is not a peer and is not timed for the comparison; it also counts the bars where the
peers' own conventions can give a different answer, which PEERS.md uses to explain
differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import FAST, QTY, SL_PCT, SLOW, TP_PCT, SymbolBars

try:
    from numba import njit as _njit

    def _jit(fn: Callable[..., Any]) -> Callable[..., Any]:
        return _njit(cache=False)(fn)

except ImportError:  # the loop still runs, only slower

    def _jit(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn


# Diagnostic counters filled by the kernel, by index.
D_ENTRY_BAR_LEG = 0  # a bracket leg touched on the entry bar itself
D_BOTH_LEGS = 1  # stop and target both inside one bar's range while long
D_EXIT_AND_LEG = 2  # a signal-exit bar on which a leg was touched after the open
D_GAP_STOP = 3  # stop filled at the open (gap through)
D_GAP_TARGET = 4  # target filled at the open (gap through)
D_SIGNAL_EXITS = 5  # exits by the cross-below signal
D_STOP_EXITS = 6
D_TARGET_EXITS = 7
N_DIAG = 8


def sma(close: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average of the last ``n`` closes (NaN before the window is full)."""
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] >= n:
        out[n - 1 :] = np.lib.stride_tricks.sliding_window_view(close, n).mean(axis=1)
    return out


def crosses(fast: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(up, down): fast crosses above / below slow at this bar's close."""
    prev_f, prev_s = fast[:-1], slow[:-1]
    cur_f, cur_s = fast[1:], slow[1:]
    up = np.zeros(fast.shape[0], dtype=np.bool_)
    down = np.zeros(fast.shape[0], dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        up[1:] = (prev_f <= prev_s) & (cur_f > cur_s)
        down[1:] = (prev_f >= prev_s) & (cur_f < cur_s)
    return up, down


def _simulate(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    close_fill: bool,
    vbt_rules: bool,
    up: np.ndarray,
    down: np.ndarray,
    sl_pct: float,
    tp_pct: float,
    qty: float,
    diag: np.ndarray,
) -> tuple[int, float]:
    """The bar loop: returns (round trips, P&L) and fills ``diag``.

    ``vbt_rules`` follows vectorbt's two conventions instead of the project's: the legs are
    not live on the entry bar, and on a signal-exit bar a touched leg exits at its level
    (checked first, gaps at the open as usual) instead of the signal exit at the open.
    """
    trips = 0
    pnl = 0.0
    long = False
    pending_entry = False
    pending_exit = False
    entry = 0.0
    stop = 0.0
    target = 0.0
    for i in range(o.shape[0]):
        entry_bar = False
        if pending_entry:
            pending_entry = False
            long = True
            entry_bar = True
            entry = o[i]
            stop = entry * (1.0 - sl_pct)
            target = entry * (1.0 + tp_pct)
        elif pending_exit:
            pending_exit = False
            touched = lo[i] <= stop or h[i] >= target
            if touched:
                diag[D_EXIT_AND_LEG] += 1
            if not (vbt_rules and touched):  # else the leg below exits, at its level
                long = False
                trips += 1
                pnl += (o[i] - entry) * qty
                diag[D_SIGNAL_EXITS] += 1
        if long and not (vbt_rules and entry_bar):
            hit_stop = lo[i] <= stop
            hit_target = h[i] >= target
            if hit_stop or hit_target:
                if entry_bar:
                    diag[D_ENTRY_BAR_LEG] += 1
                if hit_stop and hit_target:
                    diag[D_BOTH_LEGS] += 1
                if o[i] <= stop:
                    px = o[i]
                    diag[D_GAP_STOP] += 1
                    diag[D_STOP_EXITS] += 1
                elif o[i] >= target:
                    px = o[i]
                    diag[D_GAP_TARGET] += 1
                    diag[D_TARGET_EXITS] += 1
                elif hit_stop:
                    px = stop
                    diag[D_STOP_EXITS] += 1
                else:
                    px = target
                    diag[D_TARGET_EXITS] += 1
                long = False
                trips += 1
                pnl += (px - entry) * qty
        if not long and up[i]:
            if close_fill:
                long = True
                entry = c[i]
                stop = entry * (1.0 - sl_pct)
                target = entry * (1.0 + tp_pct)
            else:
                pending_entry = True
        elif long and down[i]:
            if close_fill:
                long = False
                trips += 1
                pnl += (c[i] - entry) * qty
                diag[D_SIGNAL_EXITS] += 1
            else:
                pending_exit = True
    return trips, pnl


_simulate_jit = _jit(_simulate)


@dataclass(frozen=True, slots=True)
class ReferenceResult:
    """Round trips and P&L of the reference, with its diagnostic counters."""

    round_trips: int
    pnl: float
    diag: np.ndarray

    def summary(self) -> str:
        """One line naming the counters the peers' notes refer to."""
        d = self.diag
        return (
            f"exits: {d[D_STOP_EXITS]} stop ({d[D_GAP_STOP]} gapped, at open), "
            f"{d[D_TARGET_EXITS]} target ({d[D_GAP_TARGET]} gapped, at open), "
            f"{d[D_SIGNAL_EXITS]} signal; bars where conventions matter: "
            f"{d[D_ENTRY_BAR_LEG]} entry-bar leg touches, {d[D_BOTH_LEGS]} stop+target in one "
            f"bar, {d[D_EXIT_AND_LEG]} signal-exit bars with a leg also touched."
        )


def run_reference(
    data: Sequence[SymbolBars],
    close_fill: bool = False,
    *,
    fast: int = FAST,
    slow: int = SLOW,
    vbt_rules: bool = False,
) -> ReferenceResult:
    """Simulate every symbol and add the results up.

    ``close_fill`` is the variant that fills market orders at the signal bar's close (the
    bracket then anchored to that close and live from the next bar), which is what an
    engine without next-open fills for bar data does; it is used to check such a peer.
    ``vbt_rules`` is the variant with vectorbt's two conventions (see ``_simulate``), used
    to show that a vectorbt difference is exactly those conventions. ``fast``/``slow`` are
    the SMA windows (the workload's by default; the sweep benchmark varies them).
    """
    trips = 0
    pnl = 0.0
    diag = np.zeros(N_DIAG, dtype=np.int64)
    for s in data:
        up, down = crosses(sma(s.close, fast), sma(s.close, slow))
        t, p = _simulate_jit(
            s.open,
            s.high,
            s.low,
            s.close,
            close_fill,
            vbt_rules,
            up,
            down,
            SL_PCT,
            TP_PCT,
            float(QTY),
            diag,
        )
        trips += int(t)
        pnl += float(p)
    return ReferenceResult(trips, pnl, diag)
