"""Pure conversions between ib_async's objects and backstop's commands, events and records.

No I/O: every function takes ib_async objects (or backstop commands) and returns the other
side. ib_async's types never leave this module and ``client``; the adapter sees
``OrderSnap`` / ``FillSnap`` records, backstop's events and snapshots.

IB facts this relies on (BROKERS.md): backstop's client id travels in ``orderRef`` (IB
order ids are per session); ``avgCost`` of a futures position is price x multiplier; the
multiplier of a contract is text ('50'); executions say ``BOT``/``SLD``; unset numbers are
``UNSET_DOUBLE``. Contracts, positions, account values and bars are in ``parsing_market``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ib_async import Fill, Order, Trade
from ib_async.util import UNSET_DOUBLE

from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from backstop.domain.events import BrokerOrder, Execution
from backstop.errors import ConfigError, check

OCA_SHRINK = 3  # ocaType 3: reduce the others on a partial fill, without block (BROKERS.md)

_TYPE_OUT = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
    OrderType.TRAILING_STOP: "TRAIL",
}
_TYPE_IN = {text: kind for kind, text in _TYPE_OUT.items()}
_TIF_OUT = {TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}
_TIF_IN = {text: tif for tif, text in _TIF_OUT.items()}
_ACTION_SIDE = {"BUY": Side.BUY, "SELL": Side.SELL, "BOT": Side.BUY, "SLD": Side.SELL}

# IB's order status text -> backstop's status (PARTIALLY_FILLED when some is filled)
_WORKING = frozenset({"PreSubmitted", "Submitted", "PendingCancel", "ApiUpdate"})
_PENDING = frozenset({"PendingSubmit", "ApiPending", "ValidationError"})
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
INACTIVE = "Inactive"
FILLED = "Filled"


@dataclass(frozen=True, slots=True)
class OrderSnap:
    """One IB order as backstop reads it. ``client_order_id`` is the ``orderRef`` (""
    when the order was placed without one: by hand, or by another program);
    ``parent_ib_id`` is IB's ``parentId`` (0: not a bracket child); ``status`` is IB's own
    word (``Submitted``, ``Filled``, ``Cancelled``...)."""

    client_order_id: str
    ib_order_id: int
    perm_id: int
    symbol: str
    side: Side
    qty: float
    filled: float
    status: str
    order_type: OrderType
    tif: TimeInForce
    limit_price: float | None
    stop_price: float | None
    parent_ib_id: int
    oca_group: str
    avg_fill_price: float | None

    @property
    def is_done(self) -> bool:
        return self.status in CANCELLED or self.status in (INACTIVE, FILLED)


@dataclass(frozen=True, slots=True)
class FillSnap:
    """One IB execution: its id, order reference, quantity, price, time (ns) and the
    cumulative quantity of its order after it; ``commission`` None until IB reported it."""

    exec_id: str
    client_order_id: str
    ib_order_id: int
    perm_id: int
    symbol: str
    side: Side
    qty: float
    price: float
    cum_qty: float
    ts_ns: int
    commission: float | None


def _num(value: object) -> float | None:
    """An IB number, or None when unset (UNSET_DOUBLE, None, nan)."""
    if value is None:
        return None
    out = float(value)  # type: ignore[arg-type]
    if not math.isfinite(out) or out >= UNSET_DOUBLE:
        return None
    return out


def to_ns(moment: datetime) -> int:
    """A gateway time as int64 ns UTC (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def side_of(action: str) -> Side:
    """``BUY``/``BOT`` -> BUY, ``SELL``/``SLD`` -> SELL; anything else is an error."""
    side = _ACTION_SIDE.get(action.upper())
    check(side is not None, ConfigError("action", f"unknown IB side {action!r}"))
    return side  # type: ignore[return-value]


def order_snap(trade: Trade, symbol: str) -> OrderSnap:
    """What backstop keeps of an ib_async ``Trade`` (``symbol``: backstop's name for its
    contract)."""
    order, status = trade.order, trade.orderStatus
    kind = _TYPE_IN.get(order.orderType, OrderType.MARKET)
    limit = _num(order.lmtPrice) if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = _num(order.auxPrice) if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    filled = max(float(status.filled or 0.0), _num(order.filledQuantity) or 0.0)
    avg = _num(status.avgFillPrice)
    return OrderSnap(
        client_order_id=order.orderRef or "",
        ib_order_id=int(order.orderId),
        perm_id=int(order.permId or status.permId or 0),
        symbol=symbol,
        side=side_of(order.action),
        qty=float(order.totalQuantity),
        filled=filled,
        status=gateway_status(trade),
        order_type=kind,
        tif=_TIF_IN.get(order.tif, TimeInForce.DAY),
        limit_price=limit,
        stop_price=stop,
        parent_ib_id=int(order.parentId or 0),
        oca_group=order.ocaGroup or "",
        avg_fill_price=avg if avg else None,
    )


def gateway_status(trade: Trade) -> str:
    """The order's status as the gateway last reported it. ib_async marks a trade
    ``Cancelled`` by itself on any error message about it, also when the order still works
    (a refused modify or cancel); that local mark is not the gateway's word unless the
    error was 201 (rejected) or 202 (cancelled), so the status before it stands."""
    log = trade.log
    code = log[-1].errorCode if log else 0
    if not code or code in (201, 202):
        return trade.orderStatus.status
    earlier = [entry.status for entry in log[:-1] if not entry.errorCode]
    return earlier[-1] if earlier else "PendingSubmit"


def fill_snap(fill: Fill, symbol: str) -> FillSnap:
    """What backstop keeps of an ib_async ``Fill`` (commission None until reported)."""
    ex, report = fill.execution, fill.commissionReport
    commission = _num(report.commission) if report.execId == ex.execId else None
    return FillSnap(
        exec_id=ex.execId,
        client_order_id=ex.orderRef or "",
        ib_order_id=int(ex.orderId),
        perm_id=int(ex.permId),
        symbol=symbol,
        side=side_of(ex.side),
        qty=float(ex.shares),
        price=float(ex.price),
        cum_qty=float(ex.cumQty),
        ts_ns=to_ns(ex.time),
        commission=commission,
    )


def order_status(snap: OrderSnap) -> OrderStatus:
    """backstop's status for an IB order status."""
    if snap.status == FILLED:
        return OrderStatus.FILLED
    if snap.status in CANCELLED:
        return OrderStatus.CANCELED
    if snap.status == INACTIVE:
        return OrderStatus.REJECTED
    if snap.status in _PENDING:
        return OrderStatus.SUBMITTED
    if snap.filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.ACCEPTED


def broker_order(snap: OrderSnap, cid: str, parent_cid: str | None) -> BrokerOrder:
    """The port's ``BrokerOrder`` for an IB order (``cid``: its client id)."""
    return BrokerOrder(
        client_order_id=cid,
        broker_order_id=str(snap.perm_id or snap.ib_order_id),
        symbol=snap.symbol,
        side=snap.side,
        qty=snap.qty,
        filled_qty=snap.filled,
        status=order_status(snap),
        order_type=snap.order_type,
        tif=snap.tif,
        limit_price=snap.limit_price,
        stop_price=snap.stop_price,
        parent_id=parent_cid,
        avg_fill_price=snap.avg_fill_price,
    )


def execution(fill: FillSnap, cid: str, order_qty: float | None, ts_init: int) -> Execution:
    """The port's ``Execution`` for an IB fill; ``order_qty`` is its order's total quantity
    (None: unknown, then ``leaves_qty`` is nan and the mirror judges by its own quantity)."""
    leaves = math.nan if order_qty is None else max(order_qty - fill.cum_qty, 0.0)
    return Execution(
        client_order_id=cid,
        exec_id=fill.exec_id,
        symbol=fill.symbol,
        side=fill.side,
        qty=fill.qty,
        price=fill.price,
        fee=fill.commission or 0.0,
        leaves_qty=leaves,
        ts_event=fill.ts_ns,
        ts_init=ts_init,
        broker_order_id=str(fill.perm_id or fill.ib_order_id),
    )


def ib_order(cmd: SubmitOrder, order_id: int, account: str = "") -> Order:
    """One IB order for a command (no parent, OCA or transmit set: see ``request``)."""
    order = Order(
        orderId=order_id,
        action="BUY" if cmd.side == Side.BUY else "SELL",
        totalQuantity=float(cmd.qty),
        orderType=_TYPE_OUT[OrderType(cmd.order_type)],
        tif=_TIF_OUT[TimeInForce(cmd.tif)],
        orderRef=cmd.client_order_id,
        account=account,
    )
    if cmd.limit_price is not None:
        order.lmtPrice = round(float(cmd.limit_price), 10)
    if cmd.stop_price is not None:
        order.auxPrice = round(float(cmd.stop_price), 10)
    if cmd.order_type == OrderType.TRAILING_STOP:
        order.trailingPercent = round(float(cmd.trail_percent or 0.0) * 100.0, 10)
    return order


def request(cmd: SubmitOrder, next_id: int, account: str = "") -> list[tuple[SubmitOrder, Order]]:
    """The IB orders one command places, in the order to place them, ids from ``next_id``.

    With ``legs``: a native bracket as ``ib.bracketOrder`` builds it: the parent and every
    leg but the last with ``transmit=False``, the last with ``transmit=True`` (it sends the
    whole bracket), legs carrying ``parentId``; take-profits before stops, so the stop
    transmits. With ``siblings``: one OCA group named by ``oco_group`` (else the first
    client id), ``ocaType`` 3, so a partial fill shrinks the others and exits together
    never exceed the position."""
    out: list[tuple[SubmitOrder, Order]] = []
    members = list(cmd)
    for member in members:
        out.append((member, ib_order(member, next_id + len(out), account)))
    if len(members) > 1:
        group = cmd.oco_group or cmd.client_order_id
        for _, order in out:
            order.ocaGroup = group
            order.ocaType = OCA_SHRINK
    if cmd.legs:
        parent = out[0][1]
        legs = sorted(cmd.legs, key=lambda leg: leg.order_type != OrderType.LIMIT)
        for leg in legs:
            child = ib_order(leg, next_id + len(out), account)
            child.parentId = parent.orderId
            out.append((leg, child))
        for _, order in out[:-1]:
            order.transmit = False
    return out


def amended(order: Order, cmd: AmendOrder) -> Order:
    """A copy of ``order`` (same IB order id) with the amend's quantity and levels: placing
    it again modifies the working order in place."""
    new = replace(order, transmit=True)
    if cmd.qty is not None:
        new.totalQuantity = float(cmd.qty)
    if cmd.stop_price is not None:
        new.auxPrice = round(float(cmd.stop_price), 10)
    if cmd.limit_price is not None:
        new.lmtPrice = round(float(cmd.limit_price), 10)
    return new
