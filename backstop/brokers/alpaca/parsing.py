"""Pure conversion between alpaca-py's models and backstop's vocabulary; no I/O.

Outbound: a ``SubmitOrder`` becomes one alpaca-py request (its ``legs`` a native ``bracket``
or ``oto``, its ``siblings`` an ``oco`` whose primary is the take-profit limit), an
``AmendOrder`` a ``ReplaceOrderRequest``. Inbound: alpaca-py's ``Order`` (legs nested),
``TradeUpdate``, ``Position``, ``TradeAccount`` and fill activities become frozen records of
this module (``OrderSnapshot``, ``StreamUpdate``, ``FillActivity``) or the domain's
snapshots, so that no alpaca-py type leaves this module and ``client.py``.

Alpaca sends prices and quantities as decimal strings; ``float(text)`` is the nearest double,
the same number backstop computes with. Timestamps become int nanoseconds UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from alpaca.data.models import BarSet
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import OrderClass
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.models import Order, Position, TradeAccount, TradeActivity, TradeUpdate
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from backstop.data.schema import BAR_SCHEMA
from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderStatus, OrderType, Side, TimeInForce
from backstop.domain.events import Account, BrokerOrder, BrokerPosition
from backstop.errors import ConfigError, DataError, check

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIDES = {Side.BUY: AlpacaSide.BUY, Side.SELL: AlpacaSide.SELL}
_TIFS = {TimeInForce.DAY: AlpacaTif.DAY, TimeInForce.GTC: AlpacaTif.GTC}
_TIFS[TimeInForce.IOC] = AlpacaTif.IOC
_TIF_BACK = {v.value: k for k, v in _TIFS.items()}
# orders placed elsewhere: fill-or-kill is immediate like IOC; at-open / at-close live a day
_TIF_BACK |= {"fok": TimeInForce.IOC, "opg": TimeInForce.DAY, "cls": TimeInForce.DAY}
_TYPES_BACK = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.TRAILING_STOP,
}
_OPEN = {"new", "accepted", "pending_new", "accepted_for_bidding", "held", "pending_cancel"}
_OPEN |= {"pending_replace", "pending_review", "calculated", "stopped", "suspended"}
_OPEN |= {"done_for_day"}
_STATUS = {s: OrderStatus.ACCEPTED for s in _OPEN}
_STATUS |= {
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "replaced": OrderStatus.CANCELED,  # superseded by its replacement, which carries on
}
OPEN_STATUSES = frozenset(_OPEN | {"partially_filled"})
"""Alpaca statuses of an order that may still fill (``held``: a leg waiting for its parent)."""
_TIMEFRAME_UNITS = {"Min": TimeFrameUnit.Minute, "Hour": TimeFrameUnit.Hour}
_TIMEFRAME_UNITS |= {"Day": TimeFrameUnit.Day, "Week": TimeFrameUnit.Week}


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """One Alpaca order as backstop reads it (``client_order_id`` as Alpaca holds it: a
    bracket leg's is Alpaca's own, a replacement's is ``<cid>.<n>``)."""

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    filled_qty: float
    status: str  # Alpaca's word: new, held, partially_filled, filled, canceled, replaced...
    order_type: OrderType
    tif: TimeInForce
    order_class: str
    limit_price: float | None
    stop_price: float | None
    trail_percent: float | None  # a fraction, as backstop's (Alpaca's 2.0 -> 0.02)
    avg_fill_price: float | None
    created_ns: int
    updated_ns: int
    replaces: str | None
    replaced_by: str | None
    legs: tuple[OrderSnapshot, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_stop(self) -> bool:
        """A stop-loss kind of order (stop, stop-limit, trailing), as opposed to a limit."""
        return self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)

    def flat(self) -> list[OrderSnapshot]:
        """This order, then its legs (each after its parent)."""
        out = [self]
        for leg in self.legs:
            out.extend(leg.flat())
        return out


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """One ``trade_updates`` message: ``event`` is Alpaca's word (new, fill, canceled...)."""

    event: str
    order: OrderSnapshot
    ts_event: int
    exec_id: str  # fills: the broker's execution id ("" otherwise)
    price: float | None
    qty: float | None
    position_qty: float | None


@dataclass(frozen=True, slots=True)
class FillActivity:
    """One fill from ``/v2/account/activities/FILL``: ``exec_id`` is the execution id part
    of the activity id (``<time>::<execution id>``), the id the stream's fill carries."""

    exec_id: str
    activity_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    leaves_qty: float
    cum_qty: float
    ts_event: int


# ---------------------------------------------------------------- numbers and times


def ts_ns(value: datetime) -> int:
    """A datetime as int nanoseconds since the epoch, UTC (naive: taken as UTC), exactly."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def ns_datetime(ns: int) -> datetime:
    """Int nanoseconds UTC as an aware datetime (to the microsecond, rounding down)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def number(value: str | float | int | None) -> float | None:
    """A price or quantity Alpaca sent as text (or a number) as a float; None stays None."""
    return None if value is None or value == "" else float(value)


def _side(value: Any) -> Side:
    return Side.BUY if str(getattr(value, "value", value)) == "buy" else Side.SELL


# ---------------------------------------------------------------- outbound


def order_request(cmd: SubmitOrder) -> OrderRequest:
    """The alpaca-py request for ``cmd``: a simple order, a native bracket / OTO when it
    has ``legs``, an OCO when it has ``siblings``. ``reduce_only`` has no Alpaca field: it
    is backstop's own guard, checked before the command is made."""
    if cmd.siblings:
        return _oco_request(cmd)
    common: dict[str, Any] = dict(
        symbol=cmd.symbol,
        qty=cmd.qty,
        side=_SIDES[cmd.side],
        time_in_force=_TIFS[cmd.tif],
        client_order_id=cmd.client_order_id,
    )
    if cmd.legs:
        common |= _bracket_fields(cmd)
    if cmd.order_type == OrderType.MARKET:
        return MarketOrderRequest(**common)
    if cmd.order_type == OrderType.LIMIT:
        return LimitOrderRequest(limit_price=cmd.limit_price, **common)
    if cmd.order_type == OrderType.STOP:
        return StopOrderRequest(stop_price=cmd.stop_price, **common)
    if cmd.order_type == OrderType.STOP_LIMIT:
        return StopLimitOrderRequest(
            stop_price=cmd.stop_price, limit_price=cmd.limit_price, **common
        )
    return TrailingStopOrderRequest(trail_percent=alpaca_percent(cmd.trail_percent), **common)


def alpaca_percent(fraction: float | None) -> float:
    """backstop's trailing distance as a fraction (0.02) in Alpaca's percent (2.0)."""
    check(
        fraction is not None and math.isfinite(fraction) and 0 < fraction < 1,
        ConfigError("trail_percent", f"must be a fraction in (0, 1), got {fraction!r}"),
    )
    return round(float(fraction) * 100.0, 10)  # type: ignore[arg-type]


def _bracket_fields(cmd: SubmitOrder) -> dict[str, Any]:
    tp, sl = _split_exits(cmd.legs, cmd.client_order_id, "bracket leg")
    for leg in cmd.legs:
        check(
            leg.qty == cmd.qty,
            ConfigError(
                leg.client_order_id,
                f"an Alpaca bracket leg has its entry's quantity {cmd.qty}, not {leg.qty}",
            ),
        )
    out: dict[str, Any] = {"order_class": OrderClass.BRACKET if tp and sl else OrderClass.OTO}
    if tp is not None:
        out["take_profit"] = TakeProfitRequest(limit_price=_price(tp.limit_price, tp))
    if sl is not None:
        out["stop_loss"] = _stop_loss(sl)
    return out


def _oco_request(cmd: SubmitOrder) -> OrderRequest:
    members = tuple(cmd)
    tp, sl = _split_exits(members, cmd.client_order_id, "OCO member")
    if tp is None or sl is None or len(members) != 2:
        raise ConfigError(
            cmd.client_order_id,
            "an Alpaca OCO is one take-profit limit and one stop (or stop-limit), "
            f"got {len(members)} orders",
        )
    check(
        tp.qty == sl.qty and tp.side == sl.side and tp.symbol == sl.symbol,
        ConfigError(cmd.client_order_id, "OCO members differ in symbol, side or quantity"),
    )
    return LimitOrderRequest(
        symbol=tp.symbol,
        qty=tp.qty,
        side=_SIDES[tp.side],
        time_in_force=_TIFS[tp.tif],
        client_order_id=tp.client_order_id,  # the primary order at Alpaca
        order_class=OrderClass.OCO,
        take_profit=TakeProfitRequest(limit_price=_price(tp.limit_price, tp)),
        stop_loss=_stop_loss(sl),
    )


def _split_exits(
    orders: Iterable[SubmitOrder], cid: str, what: str
) -> tuple[SubmitOrder | None, SubmitOrder | None]:
    tp = sl = None
    for o in orders:
        if o.order_type == OrderType.LIMIT and tp is None:
            tp = o
        elif o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and sl is None:
            sl = o
        else:
            raise ConfigError(
                o.client_order_id,
                f"an Alpaca {what} of {cid} is one limit (take-profit) and one stop or "
                f"stop-limit (stop-loss); {o.order_type.name} cannot be placed with it",
            )
    return tp, sl


def _stop_loss(sl: SubmitOrder) -> StopLossRequest:
    stop = _price(sl.stop_price, sl)
    if sl.order_type == OrderType.STOP_LIMIT:
        return StopLossRequest(stop_price=stop, limit_price=_price(sl.limit_price, sl))
    return StopLossRequest(stop_price=stop)


def _price(value: float | None, cmd: SubmitOrder) -> float:
    """A level ``SubmitOrder`` already checked is there (its type needs it)."""
    if value is None:
        raise ConfigError(cmd.client_order_id, f"{cmd.order_type.name} order without its price")
    return value


def replace_request(cmd: AmendOrder, new_client_id: str) -> ReplaceOrderRequest:
    """The PATCH body for ``cmd``: Alpaca replaces the order by a new one, which takes
    ``new_client_id`` (``replacement_client_id``). Alpaca's replace takes whole shares."""
    qty = None
    if cmd.qty is not None:
        check(
            float(cmd.qty).is_integer(),
            ConfigError(cmd.client_order_id, f"Alpaca replaces whole shares only, not {cmd.qty}"),
        )
        qty = int(cmd.qty)
    return ReplaceOrderRequest(
        qty=qty,
        stop_price=cmd.stop_price,
        limit_price=cmd.limit_price,
        client_order_id=new_client_id,
    )


# ---------------------------------------------------------------- inbound


def order_snapshot(order: Order) -> OrderSnapshot:
    """An alpaca-py ``Order`` (legs nested or not) as an ``OrderSnapshot``."""
    trail = number(order.trail_percent)
    kind = order.type or order.order_type
    return OrderSnapshot(
        broker_order_id=str(order.id),
        client_order_id=order.client_order_id,
        symbol=order.symbol or "",
        side=_side(order.side),
        qty=number(order.qty) or 0.0,
        filled_qty=number(order.filled_qty) or 0.0,
        status=str(getattr(order.status, "value", order.status)),
        order_type=_TYPES_BACK[str(getattr(kind, "value", kind))],
        tif=_TIF_BACK[str(getattr(order.time_in_force, "value", order.time_in_force))],
        order_class=str(getattr(order.order_class, "value", order.order_class) or "simple"),
        limit_price=number(order.limit_price),
        stop_price=number(order.stop_price),
        trail_percent=None if trail is None else trail / 100.0,
        avg_fill_price=number(order.filled_avg_price) or None,
        created_ns=ts_ns(order.created_at),
        updated_ns=ts_ns(order.updated_at),
        replaces=None if order.replaces is None else str(order.replaces),
        replaced_by=None if order.replaced_by is None else str(order.replaced_by),
        legs=tuple(order_snapshot(leg) for leg in order.legs or ()),
    )


def order_from_json(data: Mapping[str, Any]) -> OrderSnapshot:
    """An order as Alpaca's JSON has it (validated by alpaca-py's model first)."""
    return order_snapshot(Order(**data))


def stream_update(update: TradeUpdate) -> StreamUpdate:
    """A ``trade_updates`` message as a ``StreamUpdate``."""
    return StreamUpdate(
        event=str(getattr(update.event, "value", update.event)),
        order=order_snapshot(update.order),
        ts_event=ts_ns(update.timestamp),
        exec_id="" if update.execution_id is None else str(update.execution_id),
        price=update.price,
        qty=update.qty,
        position_qty=update.position_qty,
    )


def stream_update_json(data: Mapping[str, Any]) -> StreamUpdate:
    """A ``trade_updates`` message's ``data`` (JSON), validated by alpaca-py's model."""
    return stream_update(TradeUpdate(**data))


def fill_activity(data: Mapping[str, Any]) -> FillActivity:
    """One entry of ``/v2/account/activities/FILL`` (JSON) as a ``FillActivity``."""
    act = TradeActivity(**data)
    return FillActivity(
        exec_id=act.id.rpartition("::")[2],
        activity_id=act.id,
        broker_order_id=str(act.order_id),
        symbol=act.symbol,
        side=_side(act.side),
        qty=act.qty,
        price=act.price,
        leaves_qty=act.leaves_qty,
        cum_qty=act.cum_qty,
        ts_event=ts_ns(act.transaction_time),
    )


def broker_order(snap: OrderSnapshot, client_order_id: str, parent_id: str | None) -> BrokerOrder:
    """A snapshot as the domain's ``BrokerOrder``, under backstop's client id for it."""
    status = _STATUS[snap.status]
    if status == OrderStatus.ACCEPTED and snap.filled_qty > 0:
        status = OrderStatus.PARTIALLY_FILLED
    return BrokerOrder(
        client_order_id=client_order_id,
        broker_order_id=snap.broker_order_id,
        symbol=snap.symbol,
        side=snap.side,
        qty=snap.qty,
        filled_qty=snap.filled_qty,
        status=status,
        order_type=snap.order_type,
        tif=snap.tif,
        limit_price=snap.limit_price,
        stop_price=snap.stop_price,
        parent_id=parent_id,
        avg_fill_price=snap.avg_fill_price,
        updated_ts=snap.updated_ns,
    )


def broker_position(pos: Position) -> BrokerPosition:
    """A position with its signed quantity (a short is negative whichever way Alpaca
    signs its ``qty`` text) and average entry price."""
    qty = abs(float(pos.qty))
    side = str(getattr(pos.side, "value", pos.side))
    return BrokerPosition(
        symbol=pos.symbol,
        qty=-qty if side == "short" else qty,
        avg_price=float(pos.avg_entry_price),
    )


def account_snapshot(acct: TradeAccount) -> Account:
    """Equity, cash and buying power of the trading account (each required: a missing one
    is an error, never a zero)."""
    values = {}
    for name in ("equity", "cash", "buying_power"):
        value = number(getattr(acct, name))
        check(value is not None, DataError(f"Alpaca's account has no {name}", source="Alpaca"))
        values[name] = value
    return Account(**values)  # type: ignore[arg-type]


def leg_role(snap: OrderSnapshot) -> OrderRole:
    """The role of a bracket / OCO leg from its order type: the limit takes profit."""
    if snap.order_type == OrderType.TRAILING_STOP:
        return OrderRole.TRAILING
    return OrderRole.STOP_LOSS if snap.is_stop else OrderRole.TAKE_PROFIT


# ---------------------------------------------------------------- market data


def timeframe(text: str) -> TimeFrame:
    """``1Min``, ``5Min``, ``1Hour``, ``1Day``, ``1Week`` as alpaca-py's ``TimeFrame``."""
    digits = "".join(ch for ch in text if ch.isdigit())
    unit = _TIMEFRAME_UNITS.get(text[len(digits) :])
    check(
        bool(digits) and text.startswith(digits) and unit is not None and int(digits) > 0,
        ConfigError("timeframe", f"{text!r} is not one of <n>Min, <n>Hour, <n>Day, <n>Week"),
    )
    return TimeFrame(int(digits), unit)  # type: ignore[arg-type]


def bars_frame(barset: BarSet) -> pl.DataFrame:
    """Bars of every symbol as one frame in ``BAR_SCHEMA``, ordered by time then symbol."""
    rows: dict[str, list[Any]] = {name: [] for name in BAR_SCHEMA.names()}
    for symbol in sorted(barset.data):
        for bar in barset.data[symbol]:
            rows["ts"].append(ts_ns(bar.timestamp))
            rows["symbol"].append(symbol)
            for name in ("open", "high", "low", "close", "volume"):
                rows[name].append(float(getattr(bar, name)))
    return pl.DataFrame(rows, schema=BAR_SCHEMA).sort(["ts", "symbol"], maintain_order=True)
