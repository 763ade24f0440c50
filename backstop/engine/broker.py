"""The Broker ports: the one seam through which the pipeline reaches an exchange.

``BrokerPort`` (v2) is the one port: order commands out (``backstop.domain.commands``),
broker events in (``backstop.domain.events``), snapshots of account, positions, open orders
and recent fills for reconcile, and idempotent submission by client id. The simulated
exchange, the replay broker, the test fakes and the live adapters all implement it.

The engine owns this protocol; ``backstop.brokers`` implements it (the simulated exchange,
Alpaca and IBKR adapters) and imports the engine, never the other way round. The
pipeline sees only what every broker can tell: positions, open orders, account numbers and a
stream of order events. Nothing in it knows whether the broker is simulated.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.events import Account, BrokerEvent, BrokerOrder, BrokerPosition, Execution
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
    order up by client id and adopting it, never by sending again. A submit of a client id
    the broker already has places nothing and reports that order as it stands (its status and
    every execution so far), so a restarted runner that sends a decision again learns what
    became of it. Outcomes arrive as events from ``drain_events`` in the order the broker
    reported them.
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
    """The core's fill record for an execution a broker reported: what the driver books
    into the portfolio kernels, whatever the broker (``alt_prices``: a simulated venue's
    ambiguous-bar alternatives, see ``Execution``)."""
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
