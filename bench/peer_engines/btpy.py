"""backtesting.py peer: ``self.buy(size=100, sl=..., tp=...)`` filled at the next open.

backtesting.py is single-asset: each symbol is its own ``Backtest`` and the results are
summed. ``Backtest.run`` always computes its full statistics; that is part of its run.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .common import FAST, QTY, SL_PCT, SLOW, TP_PCT, SymbolBars

NOTES = [
    "Strategy.next: flat and crossover(fast, slow) -> self.buy(size=100, sl=, tp=); long and",
    "crossover(slow, fast) -> position.close(); trade_on_close=False (fills at the next",
    "open). sl/tp are absolute and P is unknown at buy(), so they are set from the signal",
    "close, then re-anchored to P*0.99/P*1.02 (trade.sl/trade.tp) in the entry bar's next():",
    "legs are live on the entry bar but at the close-based levels there (approximation),",
    "exact from the bar after. Stop-first by queue order (SL orders first); gaps fill at the",
    "open; position.close() is queued ahead of SL/TP so a signal exit takes the open.",
    "Open position at the end not counted (finalize_trades=False). Timed: Backtest(...).run()",
    "per symbol, summed (pandas rolling SMAs via self.I; run() always computes full stats).",
]


def _sma(values: np.ndarray, n: int) -> np.ndarray:
    """Rolling mean over ``n`` closes, as backtesting.py's own examples compute it."""
    return pd.Series(values).rolling(n).mean().to_numpy()


def _strategy_class() -> type:
    """Build the Strategy subclass lazily, so importing this module needs no backtesting."""
    from backtesting import Strategy
    from backtesting.lib import crossover

    class SmaCrossBracket(Strategy):
        """Long-only SMA(10)/SMA(50) cross with a 1%/2% bracket anchored to the fill."""

        def init(self) -> None:
            self.fast = self.I(_sma, self.data.Close, FAST)
            self.slow = self.I(_sma, self.data.Close, SLOW)
            self.anchored = None

        def next(self) -> None:
            if self.trades:
                trade = self.trades[-1]
                if trade is not self.anchored:
                    p = trade.entry_price
                    trade.sl = p * (1.0 - SL_PCT)
                    trade.tp = p * (1.0 + TP_PCT)
                    self.anchored = trade
            if not self.position:
                if crossover(self.fast, self.slow):
                    c = self.data.Close[-1]
                    self.buy(size=QTY, sl=c * (1.0 - SL_PCT), tp=c * (1.0 + TP_PCT))
            elif crossover(self.slow, self.fast):
                self.position.close()

    return SmaCrossBracket


class BacktestingPeer:
    """backtesting.py, one Backtest per symbol."""

    name = "backtesting"

    def version(self) -> str:
        """backtesting.py version."""
        import backtesting

        return str(backtesting.__version__)

    def notes(self) -> list[str]:
        """How this peer expresses the workload."""
        return list(NOTES)

    def prepare(self, data: Sequence[SymbolBars]) -> list[pd.DataFrame]:
        """One OHLCV frame per symbol on a naive-UTC DatetimeIndex, as backtesting.py wants."""
        frames = []
        for s in data:
            index = pd.DatetimeIndex(pd.to_datetime(s.ts), name="ts")
            frames.append(
                pd.DataFrame(
                    {
                        "Open": s.open,
                        "High": s.high,
                        "Low": s.low,
                        "Close": s.close,
                        "Volume": s.volume,
                    },
                    index=index,
                )
            )
        return frames

    def run(self, frames: list[pd.DataFrame]) -> tuple[int, float]:
        """Run every symbol; return (closed round trips, closed-trade P&L)."""
        from backtesting import Backtest

        strategy = _strategy_class()
        trips = 0
        pnl = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for df in frames:
                bt = Backtest(
                    df,
                    strategy,
                    cash=1e9,
                    spread=0.0,
                    commission=0.0,
                    trade_on_close=False,
                    hedging=False,
                    exclusive_orders=False,
                    finalize_trades=False,
                )
                stats = bt.run()
                trades = stats["_trades"]
                trips += len(trades)
                pnl += float(trades["PnL"].sum())
        return trips, pnl
