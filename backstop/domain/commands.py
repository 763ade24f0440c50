"""Order commands: what the decision core sends to a broker (the outbox's records).

A command is complete and broker-agnostic: absolute prices already rounded to the tick, the
order's deterministic client id (``client_order_id``, the one formula), its role in the trade
cycle, and how it hangs together with other orders (``parent_id`` for a bracket leg held
until its entry fills, ``oco_group`` for orders that cancel each other). Adapters translate
commands into their broker's requests and hold no trading logic; a broker with native
brackets gets the entry and its legs in one request (``SubmitOrder.legs``).

The outcome of a command is never returned: it arrives later as broker events
(``backstop.domain.events``), each carrying the client id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backstop.domain.enums import OrderRole, OrderType, Side, TimeInForce
from backstop.errors import ConfigError, check

PROTECTIVE_ROLES = frozenset({OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TRAILING})


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """Place a new order.

    ``legs`` (protective orders, ``parent_id`` = this order's client id) go out with it as one
    native bracket / OTO request and are held until it fills. ``siblings`` are orders of this
    order's ``oco_group`` placed in the same request (a stop-loss and take-profit pair as
    Alpaca's ``oco`` order class or an IB OCA group); a broker without native OCO places them
    one by one, and the core cancels the rest of a group when one fills either way."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.GTC
    role: OrderRole = OrderRole.ENTRY
    trade_cycle_id: int = 0
    strategy: int = 0
    limit_price: float | None = None
    stop_price: float | None = None
    trail_percent: float | None = None  # trailing stop distance as a fraction (0.02 = 2 %)
    reduce_only: bool = False
    parent_id: str | None = None
    oco_group: str | None = None
    legs: tuple[SubmitOrder, ...] = ()
    siblings: tuple[SubmitOrder, ...] = ()  # placed in the same request, same ``oco_group``
    ts: int = 0  # decision time (ns): when the core sent it
    bar: int = -1

    def __post_init__(self) -> None:
        check(
            self.qty > 0 and math.isfinite(self.qty),
            ConfigError(self.client_order_id, f"order quantity must be positive, got {self.qty}"),
        )
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        check(
            not needs_limit or _finite(self.limit_price),
            ConfigError(self.client_order_id, f"{self.order_type.name} order needs a limit price"),
        )
        check(
            not needs_stop or _finite(self.stop_price),
            ConfigError(self.client_order_id, f"{self.order_type.name} order needs a stop price"),
        )
        check(
            self.order_type != OrderType.TRAILING_STOP or _finite(self.trail_percent),
            ConfigError(self.client_order_id, "a trailing stop needs trail_percent"),
        )
        for leg in self.legs:
            check(
                leg.parent_id == self.client_order_id
                and leg.reduce_only
                and leg.side == Side(-int(self.side))
                and leg.role in PROTECTIVE_ROLES,
                ConfigError(
                    leg.client_order_id,
                    "a bracket leg is a reduce-only protective order on the entry's opposite "
                    "side, with the entry as its parent",
                ),
            )

    def __iter__(self):  # type: ignore[no-untyped-def]
        """This order, then its siblings: what the request places, in order."""
        yield self
        yield from self.siblings

    @property
    def is_protective(self) -> bool:
        return self.role in PROTECTIVE_ROLES


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel a working order; ``reasons`` is the ReasonCode mask that says why."""

    client_order_id: str
    ts: int = 0
    reasons: int = 0


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change a working order in place (a replace): a new total quantity and/or new levels.

    ``None`` leaves a field as it is. The client id stays the order's identity; a broker that
    replaces by a new order id reports it with a REPLACED event for the same client id."""

    client_order_id: str
    qty: float | None = None
    stop_price: float | None = None
    limit_price: float | None = None
    ts: int = 0
    reasons: int = 0

    def __post_init__(self) -> None:
        check(
            self.qty is not None or self.stop_price is not None or self.limit_price is not None,
            ConfigError(self.client_order_id, "an amend changes the quantity or a level"),
        )
        check(
            self.qty is None or (self.qty > 0 and math.isfinite(self.qty)),
            ConfigError(self.client_order_id, f"amended quantity must be positive: {self.qty}"),
        )


OrderCommand = SubmitOrder | CancelOrder | AmendOrder


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
