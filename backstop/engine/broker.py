"""The Broker ports: the one seam through which the pipeline reaches an exchange.

``BrokerPort`` (v2) is the port live adapters implement: order commands out
(``backstop.domain.commands``), broker events in (``backstop.domain.events``), snapshots of
account, positions, open orders and recent fills for reconcile, and idempotent submission
by client id. ``Broker`` (v1, below it) is the bar-stepped port the simulated exchange and
the step-by-step backtest still use; it goes when the simulator speaks commands too.

The engine owns this protocol; ``backstop.brokers`` implements it (the simulated exchange
now, Alpaca and IBKR adapters later) and imports the engine, never the other way round. The
pipeline sees only what every broker can tell: positions, open orders, account numbers and a
stream of order events. Nothing in it knows whether the broker is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderStatus, OrderType, Side
from backstop.domain.events import Account, BrokerOrder, BrokerPosition, Execution
from backstop.domain.events import BrokerEvent as BrokerEventV2
from backstop.engine.core.records import FILL_DTYPE
from backstop.errors import BackstopError


class BrokerUnavailable(BackstopError):
    """The broker could not be reached (connection refused, reset, timed out before the
    request was sent). Nothing was placed; the caller may try again later."""


@runtime_checkable
class BrokerPort(Protocol):
    """Broker port v2: what the pipeline needs from any live broker.

    Submissions are idempotent by client id: when a submit's outcome is unknown (a timeout,
    a retried request answered "duplicate client id"), the adapter resolves it by looking the
    order up by client id and adopting it, never by sending again. Outcomes arrive as events
    from ``drain_events`` in the order the broker reported them.
    """

    def submit(self, command: SubmitOrder) -> None:
        """Place an order (with its ``legs`` as one native bracket when it has them)."""
        ...

    def cancel(self, command: CancelOrder) -> None:
        """Ask the broker to cancel a working order."""
        ...

    def amend(self, command: AmendOrder) -> None:
        """Change a working order's quantity or levels."""
        ...

    def account(self) -> Account:
        """Equity, cash and buying power."""
        ...

    def positions(self) -> list[BrokerPosition]:
        """Every open position, sorted by symbol."""
        ...

    def open_orders(self) -> list[BrokerOrder]:
        """Every working order, legs included, oldest first."""
        ...

    def order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client id in any state, or None when the broker has none."""
        ...

    def recent_fills(self, since_ns: int) -> list[Execution]:
        """Executions at or after ``since_ns``, oldest first (reconcile books the missed)."""
        ...

    def last_price(self, symbol: str) -> float:
        """Latest trade or quote price (nan: none)."""
        ...

    def drain_events(self) -> list[BrokerEventV2]:
        """Order events since the last call, in the order they happened."""
        ...


@dataclass(frozen=True, slots=True)
class EntryRequest:
    """An approved entry: the order builder's output, with its bracket legs' levels."""

    trade_cycle: int
    strategy: int
    symbol: str
    side: Side
    qty: float
    ts: int
    bar: int
    order_type: OrderType = OrderType.MARKET
    tif: int = 1
    limit_price: float = float("nan")
    entry_stop_price: float = float("nan")  # stop and stop-limit entries: the trigger
    stop_price: float = float("nan")
    target_price: float = float("nan")
    stop_pct: float = 0.0
    target_pct: float = 0.0
    trail_pct: float = 0.0
    scale_in_pct: float = 0.0  # > 0: half now, half as a limit this far back from ``price``
    price: float = float("nan")  # the price the decision used (scale-in reference)


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """An approved exit: a reduce-only market order for a quantity derived from the position.

    ``role`` is the exit reason (signal, time stop, kill switch...). The broker cancels the
    symbol's working entries in the same step, with ``cancel_reasons`` as their reason mask:
    an entry still filling after the exit would rebuild the position the exit closes.
    """

    trade_cycle: int
    strategy: int
    symbol: str
    side: Side
    qty: float
    ts: int
    bar: int
    role: OrderRole = OrderRole.SIGNAL_EXIT
    cancel_reasons: int = 0


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """A working order as the broker reports it."""

    order_id: int
    symbol: str
    side: Side
    role: OrderRole
    status: OrderStatus
    qty: float
    filled_qty: float
    stop_price: float = float("nan")  # trigger of a stop / trailing leg (nan: none)

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class FillEvent:
    """A fill reported by the broker (``record`` is the core's fill record for booking)."""

    ts_event: int
    ts_init: int
    order_id: int
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    record: object


@dataclass(frozen=True, slots=True)
class OrderStatusEvent:
    """An order's status change (accepted, cancelled, expired, rejected, filled)."""

    ts_event: int
    ts_init: int
    order_id: int
    status: OrderStatus
    reasons: int = 0  # ReasonCode mask the broker gave (rejections, cancels), 0 if none


BrokerEvent = FillEvent | OrderStatusEvent


@runtime_checkable
class Broker(Protocol):
    """Port v1: the bar-stepped simulated exchange and the step-by-step backtest."""

    def submit_entry(self, request: EntryRequest) -> int:
        """Send an entry (with its bracket when it has protective levels); return its id."""
        ...

    def submit_exit(self, request: ExitRequest) -> int:
        """Send a reduce-only exit; return its id."""
        ...

    def cancel(self, order_id: int, ts: int, reasons: int = 0) -> None:
        """Cancel a working order (``reasons``: why, as a ReasonCode mask)."""
        ...

    def amend_stop(self, order_id: int, stop_price: float, ts: int, reasons: int = 0) -> None:
        """Move a working stop leg's trigger to ``stop_price`` (the pipeline only tightens)."""
        ...

    def position(self, symbol: str) -> float:
        """Signed quantity held, as the broker knows it (broker truth)."""
        ...

    def last_price(self, symbol: str) -> float:
        """The latest quote or trade price the broker has for a symbol (nan: none). The
        sizer falls back to it when a signal names no price and no bar has been seen."""
        ...

    def open_orders(self, symbol: str) -> list[OpenOrder]:
        """Working orders of a symbol, legs included."""
        ...

    def drain_events(self) -> list[BrokerEvent]:
        """Order events since the last call, in the order they happened."""
        ...


def fill_record(
    *,
    fill_id: int,
    order_id: int,
    trade_cycle: int,
    strategy: int,
    sym: int,
    side: int,
    role: int,
    qty: float,
    price: float,
    fee: float,
    ts: int,
    bar: int,
    slippage: float = 0.0,
    alt_prices: tuple[float, float, float] | None = None,
) -> np.void:
    """The core's fill record for a fill a broker reported, so any adapter can hand the
    portfolio kernels the same record the simulated exchange does (``FillEvent.record``)."""
    rec = np.zeros(1, dtype=FILL_DTYPE)[0]
    rec["id"] = fill_id
    rec["order"] = order_id
    rec["cycle"] = trade_cycle
    rec["strategy"] = strategy
    rec["sym"] = sym
    rec["side"] = side
    rec["role"] = role
    rec["qty"] = qty
    rec["price"] = price
    rec["fee"] = fee
    rec["slippage"] = slippage
    rec["ts"] = ts
    rec["bar"] = bar
    rec["ambiguous"] = alt_prices is not None
    alts = (price, price, price) if alt_prices is None else alt_prices
    names = ("alt_stop_first", "alt_target_first", "alt_open_proximity")
    for name, alt in zip(names, alts, strict=True):
        rec[name] = alt
    return rec
