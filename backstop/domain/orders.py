"""Orders at the Python boundary: the state machine, deterministic client ids, brackets.

An order changes only by applying an event through ``ALLOWED_TRANSITIONS``; anything else
raises ``OrderStateError`` (NautilusTrader's order state table is the model). The compiled
exchange uses the same table (``backstop.brokers.sim.matcher.TRANSITIONS``); a test checks
that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from backstop.domain.enums import (
    TERMINAL_STATUSES,
    OrderRole,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from backstop.domain.instruments import Instrument
from backstop.errors import ConfigError, OrderStateError, check

S = OrderStatus
ALLOWED_TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {
        (S.CREATED, S.SUBMITTED),
        (S.CREATED, S.REJECTED),
        (S.SUBMITTED, S.ACCEPTED),
        (S.SUBMITTED, S.REJECTED),
        (S.SUBMITTED, S.CANCELED),
        (S.ACCEPTED, S.PARTIALLY_FILLED),
        (S.ACCEPTED, S.FILLED),
        (S.ACCEPTED, S.CANCELED),
        (S.ACCEPTED, S.EXPIRED),
        (S.ACCEPTED, S.REJECTED),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.FILLED),
        (S.PARTIALLY_FILLED, S.CANCELED),
        (S.PARTIALLY_FILLED, S.EXPIRED),
    }
)

LEG_CODES = {
    OrderRole.ENTRY: "E",
    OrderRole.STOP_LOSS: "SL",
    OrderRole.TAKE_PROFIT: "TP",
    OrderRole.SIGNAL_EXIT: "X",
    OrderRole.TRAILING: "TS",
    # plain reduce-only exits of the exit manager, the kill switch or a strategy's reason
    **{role: "X" for role in OrderRole if role >= OrderRole.TIME_STOP},
}
CLIENT_ID_PREFIX = "bs"

MAX_CLIENT_ID = 48  # Alpaca's limit, the shortest of the brokers backstop speaks to
_LEG_ROLES = {"E": OrderRole.ENTRY, "SL": OrderRole.STOP_LOSS, "TP": OrderRole.TAKE_PROFIT}
_LEG_ROLES |= {"X": OrderRole.SIGNAL_EXIT, "TS": OrderRole.TRAILING}
_ROLE_CODES = {role: code for code, role in _LEG_ROLES.items()}


def client_order_id(run_id: str, cycle: int, role: OrderRole, leg_no: int = 0) -> str:
    """The deterministic client order id, the one formula for every order (the journal's
    ``orders`` table builds the same text column-wise from these parts): a restart that
    re-sends an intent reuses it, so the broker recognises it and never books a duplicate.
    ``leg_no`` is the order's sequence within its cycle: an order that replaces a cancelled
    one takes the next number, so no id is ever reused. With a 12-character run id it stays
    far below Alpaca's 48 characters; a longer one is an error, not a truncated id."""
    cid = f"{CLIENT_ID_PREFIX}-{run_id}-{cycle}-{LEG_CODES[role]}-{leg_no}"
    check(
        len(cid) <= MAX_CLIENT_ID and "-" not in run_id,
        ConfigError(
            "run_id",
            f"client order id {cid!r} must be at most {MAX_CLIENT_ID} characters with a "
            "run id without '-'",
        ),
    )
    return cid


@dataclass(frozen=True, slots=True)
class ClientIdParts:
    """What a client id says: whose it is, its cycle, its role family and its sequence.

    ``replacement`` is 0 for the id the core made and n for its n-th replacement at a
    broker that replaces an order by a new one (Alpaca's PATCH): ``<cid>.<n>``. The other
    parts are the base id's, so the replacement is still the same order to the core."""

    run_id: str
    cycle: int
    role: OrderRole  # ENTRY, STOP_LOSS, TAKE_PROFIT, TRAILING or SIGNAL_EXIT (any plain exit)
    leg_no: int
    replacement: int = 0

    @property
    def base(self) -> str:
        """The client id the core made (without a replacement suffix)."""
        code = _ROLE_CODES[self.role]
        return f"{CLIENT_ID_PREFIX}-{self.run_id}-{self.cycle}-{code}-{self.leg_no}"


def parse_client_order_id(cid: str) -> ClientIdParts | None:
    """The parts of one of backstop's client ids, or None for an id backstop did not make
    (an order placed by hand or by another program): reconcile adopts only ours. A
    replacement's id ``<cid>.<n>`` (``replacement_client_id``) parses to its base's parts
    with ``replacement`` = n."""
    base, dot, suffix = cid.rpartition(".")
    if not (dot and suffix.isdigit()):
        base, suffix = cid, ""  # no replacement suffix (a run id may hold a dot)
    elif suffix[0] == "0":
        return None  # ".0", ".01": never made by replacement_client_id
    parts = base.split("-")
    if len(parts) != 5 or parts[0] != CLIENT_ID_PREFIX or parts[3] not in _LEG_ROLES:
        return None
    if not (parts[2].isdigit() and parts[4].isdigit()):
        return None
    replacement = int(suffix) if suffix else 0
    return ClientIdParts(parts[1], int(parts[2]), _LEG_ROLES[parts[3]], int(parts[4]), replacement)


def replacement_client_id(cid: str, n: int) -> str:
    """The client id of the n-th replacement (n >= 1) of the order ``cid`` (a base id):
    brokers that replace an order by a new one need a new client id for it, and this one
    parses back to ``cid`` so every event of the replacement stays ``cid``'s."""
    check(n >= 1, ConfigError(cid, f"replacement number must be at least 1, got {n}"))
    new = f"{cid}.{n}"
    check(
        len(new) <= MAX_CLIENT_ID,
        ConfigError(cid, f"replacement client id {new!r} is longer than {MAX_CLIENT_ID}"),
    )
    return new


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the boundary sees it (public API, journal, broker adapters)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = OrderType.MARKET
    tif: TimeInForce = TimeInForce.DAY
    role: OrderRole = OrderRole.ENTRY
    limit_price: float | None = None
    stop_price: float | None = None
    reduce_only: bool = False
    trade_cycle_id: str = ""
    strategy_id: str = ""
    status: OrderStatus = OrderStatus.CREATED
    filled_qty: float = 0.0

    def __post_init__(self) -> None:
        check(
            self.qty > 0 and math.isfinite(self.qty),
            ConfigError("qty", f"must be a positive number, got {self.qty}"),
        )
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        check(
            not needs_limit or self.limit_price is not None,
            ConfigError("limit_price", f"{self.order_type.name} order needs a limit price"),
        )
        check(
            not needs_stop or self.stop_price is not None,
            ConfigError("stop_price", f"{self.order_type.name} order needs a stop price"),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def transition(self, new: OrderStatus, filled_qty: float | None = None) -> Order:
        """Apply a status event; an illegal transition raises ``OrderStateError``."""
        if (self.status, new) not in ALLOWED_TRANSITIONS:
            raise OrderStateError(
                f"order {self.client_order_id}: {self.status.name} -> {new.name} is not allowed"
            )
        return replace(
            self, status=new, filled_qty=self.filled_qty if filled_qty is None else filled_qty
        )


def build_order(instrument: Instrument, **fields: object) -> Order:
    """Build an order with its prices rounded to the instrument's tick (at build time only)."""
    for key in ("limit_price", "stop_price"):
        value = fields.get(key)
        if value is not None:
            fields[key] = instrument.round_price(float(value))  # type: ignore[arg-type]
    return Order(symbol=instrument.symbol, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Bracket:
    """An entry with its OCO pair of protective legs; legs share the entry's trade cycle."""

    entry: Order
    stop_loss: Order
    take_profit: Order

    def __post_init__(self) -> None:
        e, sl, tp = self.entry, self.stop_loss, self.take_profit
        for leg in (sl, tp):
            check(
                leg.side == Side(-int(e.side)),
                ConfigError("bracket", "legs must be on the opposite side of the entry"),
            )
            check(leg.reduce_only, ConfigError("bracket", "legs must be reduce-only"))
            check(
                leg.trade_cycle_id == e.trade_cycle_id,
                ConfigError("bracket", "legs must share the entry's trade_cycle_id"),
            )
        ref = e.limit_price
        if ref is not None and sl.stop_price is not None and tp.limit_price is not None:
            below, above = (
                (sl.stop_price, tp.limit_price)
                if e.side == Side.BUY
                else (tp.limit_price, sl.stop_price)
            )
            check(
                below < ref < above,
                ConfigError(
                    "bracket",
                    f"stop {sl.stop_price} and target {tp.limit_price} must straddle "
                    f"the entry {ref} on the protective sides",
                ),
            )
