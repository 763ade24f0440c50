"""The fake gateway's account: signed positions with IB's average cost, cash and P&L.

Every fill (the bot's, an external one, a starting position) goes through ``Ledger.apply``,
in the order the market made them. Amounts use the contract multiplier: IB reports
``avgCost`` as price x multiplier (ES bought at 6000 -> 300000) and P&L in dollars.

Cash model (stated, not IB's exact margin engine): a stock fill moves cash by its notional; a
futures fill moves cash only by the P&L it realizes; commissions always leave cash.
NetLiquidation is cash + stock market value + futures unrealized P&L at the last closes;
the margin the fake holds is ``margin_rate`` (10%) of the gross position value, so
AvailableFunds = ExcessLiquidity = NetLiquidation - margin, BuyingPower = 4 x AvailableFunds.
No reduce-only: a SELL larger than a long position flips it short at the fill price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Holding:
    """One contract's signed size and average price (not yet times the multiplier)."""

    qty: float = 0.0
    avg: float = 0.0


class Ledger:
    """Positions, cash and realized P&L, updated fill by fill."""

    def __init__(self, cash: float, margin_rate: float = 0.10) -> None:
        self.cash = float(cash)
        self.margin_rate = margin_rate
        self.holdings: dict[str, Holding] = {}
        self.realized: dict[str, float] = {}

    def apply(
        self, symbol: str, dq: float, price: float, mult: float, future: bool, commission: float
    ) -> float | None:
        """Book a signed fill; return the P&L it realized net of its commission (None when it
        only opened: then the commission is a cost outside realized P&L, as avgCost here is
        price x multiplier without commissions)."""
        h = self.holdings.setdefault(symbol, Holding())
        realized: float | None = None
        if h.qty != 0 and (h.qty > 0) != (dq > 0):
            closed = min(abs(dq), abs(h.qty))
            realized = closed * (price - h.avg) * mult * (1 if h.qty > 0 else -1) - commission
            self.realized[symbol] = self.realized.get(symbol, 0.0) + realized
        new = h.qty + dq
        if h.qty == 0 or (h.qty > 0) == (dq > 0):
            h.avg = (abs(h.qty) * h.avg + abs(dq) * price) / abs(new)
        elif new != 0 and (new > 0) != (h.qty > 0):
            h.avg = price  # crossed zero: the rest opened at this price
        h.qty = new
        if abs(new) <= 1e-9:
            h.qty, h.avg = 0.0, 0.0
        if not future:
            self.cash -= dq * price + commission
        elif realized is not None:
            self.cash += realized  # already net of this fill's commission
        else:
            self.cash -= commission
        return realized

    def open_positions(self) -> list[tuple[str, Holding]]:
        """Non-flat holdings, by symbol."""
        return sorted((s, h) for s, h in self.holdings.items() if h.qty != 0)

    def values(
        self, mark: Callable[[str], float], mult: Callable[[str], float], future: set[str]
    ) -> dict[str, float]:
        """Account values by IB tag (USD), at the marks ``mark`` gives."""
        stock_value = 0.0
        unrealized = 0.0
        gross = 0.0
        for s, h in self.open_positions():
            px, m = mark(s), mult(s)
            unrealized += h.qty * (px - h.avg) * m
            gross += abs(h.qty) * px * m
            if s not in future:
                stock_value += h.qty * px * m
        fut_unrealized = sum(
            h.qty * (mark(s) - h.avg) * mult(s) for s, h in self.open_positions() if s in future
        )
        net = self.cash + stock_value + fut_unrealized
        margin = self.margin_rate * gross
        available = net - margin
        return {
            "NetLiquidation": net,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "CashBalance": self.cash,
            "EquityWithLoanValue": net,
            "GrossPositionValue": gross,
            "InitMarginReq": margin,
            "MaintMarginReq": margin,
            "AvailableFunds": available,
            "ExcessLiquidity": available,
            "BuyingPower": 4 * available,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": sum(self.realized.values()),
        }
