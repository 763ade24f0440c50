"""backtrader peer: ``buy_bracket`` with a market parent, cheat-on-open off.

backtrader is run one symbol per ``Cerebro`` (as a single-asset engine) and the results are
summed. Observers are off (``stdstats=False``): nothing is plotted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .common import FAST, QTY, SL_PCT, SLOW, TP_PCT, SymbolBars

NOTES = [
    "Strategy.next: flat and CrossOver(SMA10, SMA50) > 0 -> buy_bracket(size=100,",
    "exectype=Market, stopprice=, limitprice=) (sell Stop + sell Limit children, OCO); long",
    "and CrossOver < 0 -> cancel the legs, close(); cheat_on_open=False (fills at the next",
    "open). Leg prices are fixed at submission, before P is known: set from the signal close,",
    "then replaced on the parent's Completed notification by an OCO Stop/Limit pair at",
    "P*0.99/P*1.02, live from the bar after the entry bar, as bracket children are. Not",
    "expressible: legs live on the entry bar. Stop-first by queue order + OCO; gaps fill at",
    "the open. Broker checksubmit=False (so a leg placed on the entry bar can be cancelled",
    "on it). Closed trades from notify_trade; open position at the end not counted. Timed:",
    "Cerebro(stdstats=False) build + run per symbol from a pandas frame, summed.",
]


def _strategy_class() -> type:
    """Build the Strategy subclass lazily, so importing this module needs no backtrader."""
    import backtrader as bt

    class SmaCrossBracket(bt.Strategy):
        """Long-only SMA(10)/SMA(50) cross with a 1%/2% bracket anchored to the fill."""

        def __init__(self) -> None:
            fast = bt.ind.SMA(self.data.close, period=FAST)
            slow = bt.ind.SMA(self.data.close, period=SLOW)
            self.cross = bt.ind.CrossOver(fast, slow)
            self.entry: Any = None
            self.stop_order: Any = None
            self.round_trips = 0
            self.pnl = 0.0

        def notify_order(self, order: Any) -> None:
            # Notifications carry clones of the orders: match them by reference number.
            if (
                self.entry is not None
                and order.ref == self.entry.ref
                and order.status == order.Completed
            ):
                p = order.executed.price
                self.entry = None
                # Re-anchor the bracket to the fill: cancelling one OCO leg cancels the other.
                self.cancel(self.stop_order)
                self.stop_order = self.sell(
                    size=QTY, exectype=bt.Order.Stop, price=p * (1.0 - SL_PCT)
                )
                self.sell(
                    size=QTY, exectype=bt.Order.Limit, price=p * (1.0 + TP_PCT), oco=self.stop_order
                )

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                self.round_trips += 1
                self.pnl += trade.pnl

        def next(self) -> None:
            if not self.position:
                if self.entry is None and self.cross[0] > 0:
                    c = self.data.close[0]
                    self.entry, self.stop_order, _ = self.buy_bracket(
                        size=QTY,
                        exectype=bt.Order.Market,
                        stopprice=c * (1.0 - SL_PCT),
                        limitprice=c * (1.0 + TP_PCT),
                    )
            elif self.cross[0] < 0:
                self.cancel(self.stop_order)
                self.close()

    return SmaCrossBracket


class BacktraderPeer:
    """backtrader, one Cerebro per symbol."""

    name = "backtrader"

    def version(self) -> str:
        """backtrader version."""
        import backtrader as bt

        return str(bt.__version__)

    def notes(self) -> list[str]:
        """How this peer expresses the workload."""
        return list(NOTES)

    def prepare(self, data: Sequence[SymbolBars]) -> list[pd.DataFrame]:
        """One OHLCV frame per symbol with a naive-UTC DatetimeIndex (PandasData's input)."""
        frames = []
        for s in data:
            index = pd.DatetimeIndex(pd.to_datetime(s.ts), name="datetime")
            frames.append(
                pd.DataFrame(
                    {
                        "open": s.open,
                        "high": s.high,
                        "low": s.low,
                        "close": s.close,
                        "volume": s.volume,
                        "openinterest": 0.0,
                    },
                    index=index,
                )
            )
        return frames

    def run(self, frames: list[pd.DataFrame]) -> tuple[int, float]:
        """Run every symbol; return (closed round trips, closed-trade P&L)."""
        import backtrader as bt

        strategy = _strategy_class()
        trips = 0
        pnl = 0.0
        for df in frames:
            cerebro = bt.Cerebro(stdstats=False, cheat_on_open=False)
            cerebro.adddata(bt.feeds.PandasData(dataname=df))
            cerebro.addstrategy(strategy)
            cerebro.broker.setcash(1e9)
            cerebro.broker.setcommission(commission=0.0)
            # Orders go straight to the pending queue, so a leg placed on the entry bar can be
            # cancelled on that same bar (a signal exit right after entry); with cash this
            # large the margin check that checksubmit adds never rejects anything.
            cerebro.broker.set_checksubmit(False)
            strat = cerebro.run()[0]
            trips += strat.round_trips
            pnl += strat.pnl
        return trips, pnl
