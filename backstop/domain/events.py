"""Broker events: the only way the core learns what happened to its orders.

Every event names the order by backstop's client id and carries two times: ``ts_event``
(when it happened at the broker) and ``ts_init`` (when backstop received it). Fills carry
the broker's execution id, so a fill reported twice (a stream event and a REST re-read after
a reconnect) is booked once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from backstop.domain.enums import OrderStatus, OrderType, Side, TimeInForce


class OrderUpdateKind(IntEnum):
    """Status changes a broker reports (fills are ``Execution`` events)."""

    ACCEPTED = 1
    REJECTED = 2
    CANCELED = 3
    EXPIRED = 4
    REPLACED = 5  # an amend took effect: new quantity / levels (same client id)


UPDATE_STATUS = {
    OrderUpdateKind.ACCEPTED: OrderStatus.ACCEPTED,
    OrderUpdateKind.REJECTED: OrderStatus.REJECTED,
    OrderUpdateKind.CANCELED: OrderStatus.CANCELED,
    OrderUpdateKind.EXPIRED: OrderStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's status changed at the broker (anything but a fill)."""

    kind: OrderUpdateKind
    client_order_id: str
    ts_event: int
    ts_init: int
    broker_order_id: str = ""
    reasons: int = 0  # ReasonCode mask (why it was rejected or cancelled), 0 if none
    message: str = ""  # the broker's own words for a rejection
    qty: float | None = None  # REPLACED: the new total quantity
    stop_price: float | None = None  # REPLACED: the new stop level
    limit_price: float | None = None  # REPLACED: the new limit level
    # REPLACED by the venue itself: a stop-limit triggered beyond its limit rests as a limit
    order_type: OrderType | None = None


@dataclass(frozen=True, slots=True)
class Execution:
    """A fill. ``leaves_qty`` is what remains of the order after it (0: filled)."""

    client_order_id: str
    exec_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    leaves_qty: float
    ts_event: int
    ts_init: int
    broker_order_id: str = ""
    slippage: float = 0.0  # price distance from the reference price the fill paid (0: none)
    # a simulated venue's fill in an ambiguous bar (its stop and target both touched): what
    # the stop-first, target-first and open-proximity orderings would have paid; None: clear
    alt_prices: tuple[float, float, float] | None = None


BrokerEvent = OrderUpdate | Execution


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the broker reports it on request (open orders, look-up by client id)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: float
    filled_qty: float
    status: OrderStatus
    order_type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.GTC
    limit_price: float | None = None
    stop_price: float | None = None
    parent_id: str | None = None  # client id of the entry a bracket leg belongs to
    avg_fill_price: float | None = None
    updated_ts: int | None = None  # ns of its last change at the broker (None: unknown)

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """A position as the broker reports it: signed quantity and average entry price."""

    symbol: str
    qty: float
    avg_price: float


@dataclass(frozen=True, slots=True)
class Account:
    equity: float
    cash: float
    buying_power: float
