"""Orders as the fake keeps them, and the checks Alpaca makes when one is submitted.

A submitted body (the JSON alpaca-py's ``OrderRequest.to_request_fields()`` sends) becomes
one ``FakeOrder`` per leg: a bracket is its entry plus a take-profit and a stop-loss leg, an
OTO its entry plus one leg, an OCO a take-profit limit plus a stop leg. Legs of a bracket or
OTO are ``held`` until the entry fills. Ids are uuid5 of a counter, so two runs of the same
script produce the same ids. A body the fake refuses raises ``Refused`` carrying the HTTP
status and the Alpaca error JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = uuid.UUID("6f2b7a0e-5d1c-4c55-9a64-2f1d0c3b8e11")

OPEN_STATUSES = ("new", "partially_filled", "accepted", "held", "pending_new")
"""Statuses of an order that can still fill (``GET /v2/orders?status=open``)."""

ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCE = ("day", "gtc", "ioc")
ORDER_CLASSES = ("simple", "bracket", "oto", "oco")

CODE_INVALID = 40010001  # Alpaca's code for a malformed or duplicate request (HTTP 422)
CODE_FORBIDDEN = 40310000  # insufficient qty / buying power, refused orders (HTTP 403)
CODE_PRICE = 42210000  # a price rule of an order class broken (HTTP 422)


def fake_uuid(kind: str, n: int | str) -> str:
    """A deterministic UUID string for the ``n``-th thing of ``kind`` (order, fill, asset...)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}-{n}"))


class Refused(Exception):
    """The fake refuses a request: ``status`` is the HTTP status, ``body`` the error JSON."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message, **extra}


@dataclass(slots=True)
class FakeOrder:
    """One order at the fake; mutable, changed only by the market under its lock."""

    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    qty: float
    type: str
    time_in_force: str
    order_class: str
    created_at: int
    status: str
    seq: int
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    hwm: float | None = None
    extended_hours: bool = False
    updated_at: int = 0
    filled_at: int | None = None
    expired_at: int | None = None
    canceled_at: int | None = None
    failed_at: int | None = None
    replaced_at: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    parent_id: str | None = None
    legs: list[str] = field(default_factory=list)
    sibling_id: str | None = None  # the other exit of an OCO pair (bracket legs, OCO)
    live_from: int = 0  # first tape index the order may fill on
    live_day: Any = None  # New York date of its first live bar (DAY expiry)
    max_fill: float | None = None  # partial-fill fault: most filled per bar
    triggered: bool = False  # a stop-limit triggered beyond its limit rests as a limit

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self.side == "buy" else -1

    @property
    def leaves_qty(self) -> float:
        """Quantity still to fill."""
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill or be cancelled."""
        return self.status in OPEN_STATUSES


def number(body: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    """Read a positive number (JSON number or numeric string) from ``body[key]``."""
    raw = body.get(key)
    if raw is None:
        if required:
            raise Refused(422, CODE_INVALID, f"{key} is required")
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise Refused(422, CODE_INVALID, f"invalid {key} {raw!r}") from None
    if not value > 0:
        raise Refused(422, CODE_INVALID, f"{key} must be > 0 (got {raw!r})")
    return value


def choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None) -> str:
    """Read an enum field, refusing values the fake does not serve (named in the message)."""
    raw = body.get(key, default)
    if raw is None:
        raise Refused(422, CODE_INVALID, f"{key} is required")
    value = str(raw).lower()
    if value not in allowed:
        raise Refused(
            422, CODE_INVALID, f"invalid {key} {raw!r} (the fake serves {', '.join(allowed)})"
        )
    return value


def check_prices(order: FakeOrder, body: dict[str, Any]) -> None:
    """Fill the price fields an order type needs from ``body``, refusing missing or extra ones."""
    kind = order.type
    if kind in ("limit", "stop_limit"):
        order.limit_price = number(body, "limit_price", required=True)
    if kind in ("stop", "stop_limit"):
        order.stop_price = number(body, "stop_price", required=True)
    if kind == "trailing_stop":
        order.trail_price = number(body, "trail_price")
        order.trail_percent = number(body, "trail_percent")
        if (order.trail_price is None) == (order.trail_percent is None):
            raise Refused(
                422, CODE_INVALID, "trailing_stop needs exactly one of trail_price, trail_percent"
            )


def check_bracket_levels(
    side: str, base: float, take_profit: float | None, stop: float | None
) -> None:
    """Alpaca's rule for exit legs: the target beyond the base price, the stop on the other side.

    ``base`` is the entry's limit price, or the last trade price for a market entry; legs must
    sit at least a cent away from it.
    """
    up = side == "buy"
    if take_profit is not None:
        ok = take_profit >= base + 0.01 if up else take_profit <= base - 0.01
        if not ok:
            rel = ">=" if up else "<="
            sign = "+" if up else "-"
            raise Refused(
                422,
                CODE_PRICE,
                f"take_profit.limit_price must be {rel} base_price {sign} 0.01 "
                f"(limit_price {take_profit!r}, base_price {base!r})",
            )
    if stop is not None:
        ok = stop <= base - 0.01 if up else stop >= base + 0.01
        if not ok:
            rel = "<=" if up else ">="
            sign = "-" if up else "+"
            raise Refused(
                422,
                CODE_PRICE,
                f"stop_loss.stop_price must be {rel} base_price {sign} 0.01 "
                f"(stop_price {stop!r}, base_price {base!r})",
            )


def check_increment(key: str, value: float | None) -> None:
    """Alpaca's minimum price increment: whole cents from $1.00, 1/100 cent below it."""
    if value is None:
        return
    steps = value * (100 if value >= 1.0 else 10_000)
    if abs(steps - round(steps)) > 1e-6:
        raise Refused(
            422,
            CODE_PRICE,
            f"invalid {key} {value!r}. sub-penny increment does not fulfill minimum pricing "
            "criteria",
        )
