"""The Broker protocol: the one port through which the pipeline reaches an exchange.

The engine owns this protocol; ``backstop.brokers`` implements it (the simulated exchange
now, Alpaca and IBKR adapters later) and imports the engine, never the other way round. The
pipeline sees only what every broker can tell: positions, open orders, account numbers and a
stream of order events. Nothing in it knows whether the broker is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from backstop.engine.enums import OrderRole, OrderStatus, OrderType, Side


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


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """An approved exit: a reduce-only market order for a quantity derived from the position."""

    trade_cycle: int
    strategy: int
    symbol: str
    side: Side
    qty: float
    ts: int
    bar: int


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


@dataclass(frozen=True, slots=True)
class Account:
    equity: float
    cash: float
    buying_power: float


@runtime_checkable
class Broker(Protocol):
    """What the pipeline needs from any broker, simulated or live."""

    def submit_entry(self, request: EntryRequest) -> int:
        """Send an entry (with its bracket when it has protective levels); return its id."""
        ...

    def submit_exit(self, request: ExitRequest) -> int:
        """Send a reduce-only exit; return its id."""
        ...

    def cancel(self, order_id: int, ts: int) -> None:
        """Cancel a working order."""
        ...

    def position(self, symbol: str) -> float:
        """Signed quantity held, as the broker knows it (broker truth)."""
        ...

    def open_orders(self, symbol: str) -> list[OpenOrder]:
        """Working orders of a symbol, legs included."""
        ...

    def drain_events(self) -> list[BrokerEvent]:
        """Order events since the last call, in the order they happened."""
        ...
