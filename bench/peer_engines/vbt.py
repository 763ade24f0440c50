"""vectorbt (1.2.x) peer: ``Portfolio.from_signals`` with ``sl_stop``/``tp_stop``.

Both of vectorbt's simulation engines are measured through the same call: ``engine="numba"``
(the classic ``@njit`` kernels) and ``engine="rust"`` (the ``vectorbt-rust`` kernels).
vectorbt is vectorised over columns, so a multi-symbol panel is one call with one column per
symbol; it needs a rectangular panel, so symbols with different timestamps run one by one.

The frames' index is naive UTC: with a tz-aware index vectorbt's shape checks turn the index
into an array of Timestamp objects several times per call, which made a 200k-bar run ~50x
slower here (4.6 s instead of 0.09 s) without changing any result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .common import FAST, QTY, SL_PCT, SLOW, TP_PCT, SymbolBars, same_timestamps

NOTES = [
    "Portfolio.from_signals: MA crossovers on closes shifted one bar (signals.fshift(1)),",
    "price=open (fills at the next bar's open), size=100 amount, longonly, sl_stop=0.01,",
    "tp_stop=0.02, stop_entry_price=FillPrice, stop_exit_price=StopLimit, open/high/low",
    "given: a gap through either level fills at the open, and the stop level is checked",
    "before the target (stop-first). Not expressible: stops are checked only from the bar",
    "after the entry bar (legs not live on the entry bar), and a level touched inside a bar",
    "beats that bar's signal exit at the open (exit at the level, not the open).",
    "Open position at the end excluded (trades.closed). Timed: MA.run x2, crossovers,",
    "from_signals, closed-trade count and P&L, from wide pandas frames in memory (naive",
    "UTC index: a tz-aware one costs vectorbt object conversions, ~50x slower at 200k bars).",
]


@dataclass(frozen=True, slots=True)
class _Panel:
    """Wide OHLC frames (one column per symbol) for one vectorbt call."""

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame


def _panel(group: list[SymbolBars]) -> _Panel:
    """Stack one group of same-timestamp symbols into wide frames."""
    index = pd.DatetimeIndex(pd.to_datetime(group[0].ts), name="ts")
    cols = [s.symbol for s in group]

    def frame(field: str) -> pd.DataFrame:
        values = np.column_stack([getattr(s, field) for s in group])
        return pd.DataFrame(values, index=index, columns=cols)

    return _Panel(frame("open"), frame("high"), frame("low"), frame("close"))


class VectorbtPeer:
    """vectorbt on one of its two simulation engines ("numba" or "rust")."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.name = "vectorbt_nb" if engine == "numba" else "vectorbt_rs"

    def version(self) -> str:
        """vectorbt version, with vectorbt-rust's for the rust engine."""
        import vectorbt as vbt

        if self.engine == "rust":
            import vectorbt_rust

            return f"{vbt.__version__} (vectorbt-rust {vectorbt_rust.__version__})"
        return str(vbt.__version__)

    def notes(self) -> list[str]:
        """How this peer expresses the workload."""
        return [f"engine={self.engine}.", *NOTES]

    def prepare(self, data: Sequence[SymbolBars]) -> list[_Panel]:
        """Wide frames on naive-UTC bar-open times (one panel, or one per symbol if ragged)."""
        groups = [list(data)] if same_timestamps(data) else [[s] for s in data]
        return [_panel(group) for group in groups]

    def run(self, panels: list[_Panel]) -> tuple[int, float]:
        """Simulate every panel; return (closed round trips, closed-trade P&L)."""
        import vectorbt as vbt
        from vectorbt.portfolio.enums import StopEntryPrice, StopExitPrice

        trips = 0
        pnl = 0.0
        for p in panels:
            fast = vbt.MA.run(p.close, FAST, short_name="fast")
            slow = vbt.MA.run(p.close, SLOW, short_name="slow")
            # Decided on bar t's close, executed at bar t+1's open.
            entries = fast.ma_crossed_above(slow).vbt.signals.fshift(1)
            exits = fast.ma_crossed_below(slow).vbt.signals.fshift(1)
            pf = vbt.Portfolio.from_signals(
                p.close,
                entries.to_numpy(),
                exits.to_numpy(),
                price=p.open,
                open=p.open,
                high=p.high,
                low=p.low,
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
                engine=self.engine,
            )
            closed = pf.trades.closed
            trips += int(np.sum(closed.count()))
            pnl += float(np.sum(closed.pnl.sum()))
        return trips, pnl
