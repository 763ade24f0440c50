"""Orders as the fake gateway keeps them, and the reading of a ``placeOrder`` message.

An ``IbOrder`` is what the client sent (its IB fields, kept to be echoed back in openOrder and
completedOrder) plus the gateway's bookkeeping: ``perm_id`` (unique for the fake's life, like
TWS's permanent id), the gateway ``epoch`` it was placed in (a restart starts a new one, and
order ids of a new epoch may repeat those of an old one), and ``fo``: the venue-neutral order
the matching engine (``fake_alpaca.market.Market``) works on once the order is transmitted.
Field positions follow ib_async 2.1's ``Client.placeOrder`` at the fake's server version.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.testing.fake_alpaca.orders import FakeOrder
from backstop.testing.fake_ibkr.contracts import Spec
from backstop.testing.fake_ibkr.wire import flag, integer, num

ORDER_TYPES = {"MKT": "market", "LMT": "limit", "STP": "stop", "STP LMT": "stop_limit"}
TIFS = {"DAY": "day", "GTC": "gtc", "IOC": "ioc"}

CONTRACT_KEYS = (
    "conId",
    "symbol",
    "secType",
    "lastTradeDateOrContractMonth",
    "strike",
    "right",
    "multiplier",
    "exchange",
    "primaryExchange",
    "currency",
    "localSymbol",
    "tradingClass",
)


class Unserved(Exception):
    """A request the fake does not serve (answered with an error naming what, never ignored)."""


@dataclass(slots=True)
class IbOrder:
    """One order at the fake gateway (mutable; changed only under the server lock)."""

    order_id: int
    client_id: int
    perm_id: int
    epoch: int
    spec: Spec
    action: str  # BUY | SELL
    total_qty: float
    order_type: str  # MKT | LMT | STP | STP LMT
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    oca_type: int
    order_ref: str
    transmit: bool
    parent_id: int
    account: str
    fo: FakeOrder | None = None  # set once transmitted to the market
    completed_ts: int | None = None

    @property
    def side(self) -> str:
        """The market's side name."""
        return "buy" if self.action == "BUY" else "sell"


def contract_request(fields: list[str], at: int) -> dict[str, str]:
    """The 12 contract fields of a request starting at index ``at``, by name."""
    return dict(zip(CONTRACT_KEYS, fields[at : at + 12], strict=True))


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """The parts of a placeOrder message the fake acts on."""

    order_id: int
    contract: dict[str, str]
    action: str
    total_qty: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    oca_type: int


def parse_place(fields: list[str]) -> PlaceRequest:
    """Read a placeOrder message (field 0 is the message id 3); raise ``Unserved`` for what the
    fake does not model (combos, what-if, algos, scale, hedge, delta-neutral, iceberg,
    all-or-none, minimum-quantity, good-after-time and conditional orders), never ignore it."""
    if len(fields) < 91:
        raise Unserved(f"placeOrder with {len(fields)} fields (expected at least 91)")
    contract = contract_request(fields, 2)
    if contract["secType"] == "BAG":
        raise Unserved("combo (BAG) orders")
    order_type = fields[18].upper()
    if order_type not in ORDER_TYPES:
        raise Unserved(f"order type {fields[18]!r} (the fake serves {', '.join(ORDER_TYPES)})")
    tif = fields[21].upper() or "DAY"
    if tif not in TIFS:
        raise Unserved(f"time in force {fields[21]!r} (the fake serves {', '.join(TIFS)})")
    # the type is known from here, so field positions (some hang on it) are the ones below
    variable = {
        65: "delta-neutral orders",
        73: "scale orders",
        77: "hedge orders",
        83: "algo orders",
    }
    for idx, what in variable.items():
        if fields[idx] not in ("", "0", "0.0", "1.7976931348623157e+308"):
            raise Unserved(what)
    if flag(fields[82]):
        raise Unserved("delta-neutral contracts")
    if flag(fields[85]):
        raise Unserved("what-if orders")
    behaviours = {
        31: "iceberg orders (displaySize)",
        37: "goodAfterTime",
        50: "all-or-none orders",
        51: "minQty",
        90: "conditional orders",
    }
    for idx, what in behaviours.items():
        if fields[idx] not in ("", "0", "2147483647"):
            raise Unserved(what)
    lmt = num(fields[19], default=float("nan"))
    aux = num(fields[20], default=float("nan"))
    return PlaceRequest(
        order_id=integer(fields[1]),
        contract=contract,
        action=fields[16].upper(),
        total_qty=num(fields[17]),
        order_type=order_type,
        lmt_price=None if lmt != lmt else lmt,
        aux_price=None if aux != aux else aux,
        tif=tif,
        oca_group=fields[22],
        account=fields[23],
        order_ref=fields[26],
        transmit=flag(fields[27]),
        parent_id=integer(fields[28]),
        oca_type=integer(fields[47]),
    )
