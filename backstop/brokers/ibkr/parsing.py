"""Pure conversions between ib_async's objects and backstop's commands, events and records.

No I/O: every function takes ib_async objects (or backstop commands) and returns the other
side. ib_async's types never leave this module and ``client``; the adapter sees
``OrderSnap`` / ``FillSnap`` records, backstop's events and snapshots.

IB facts this relies on (BROKERS.md): backstop's client id travels in ``orderRef`` (IB
order ids are per session); ``avgCost`` of a futures position is price x multiplier; the
multiplier of a contract is text ('50'); executions say ``BOT``/``SLD``; unset numbers are
``UNSET_DOUBLE``. Contract building and the registry check are in ``contracts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ib_async import AccountValue, Contract, ContractDetails, Fill, Future, Order, Stock, Trade
from ib_async.util import UNSET_DOUBLE

from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from backstop.domain.events import Account, BrokerOrder, BrokerPosition, Execution
from backstop.domain.instruments import Instrument
from backstop.errors import BackstopError, ConfigError, check

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
        status=status.status,
        order_type=kind,
        tif=_TIF_IN.get(order.tif, TimeInForce.DAY),
        limit_price=limit,
        stop_price=stop,
        parent_ib_id=int(order.parentId or 0),
        oca_group=order.ocaGroup or "",
        avg_fill_price=avg if avg else None,
    )


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


# ---------------------------------------------------------------- contracts and positions

_MONTH_CODES = "FGHJKMNQUVXZ"
_FUTURE_EXCHANGE = "CME"  # never GLOBEX: current gateways refuse it (BROKERS.md)


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What IB's contract details say about a symbol: its contract id, tick and multiplier
    (1 for a stock, whose multiplier IB leaves empty)."""

    symbol: str
    con_id: int
    tick: float
    multiplier: float
    is_future: bool


def contract_for(symbol: str, is_future: bool, months: dict[str, str] | None = None) -> Contract:
    """The IB contract for a backstop symbol: a dated future (``ESZ5``: root ES, local
    symbol ESZ5 on CME), a futures root with its month from ``months`` (``{"ES":
    "202512"}``) or without one (IB must then find exactly one contract, see
    ``contract_spec``), or a stock routed SMART in USD."""
    if not is_future:
        return Stock(symbol, "SMART", "USD")
    months = months or {}
    for cut in (len(symbol) - 2, len(symbol) - 3):
        root, code, year = symbol[:cut], symbol[cut : cut + 1], symbol[cut + 1 :]
        if cut > 0 and code in _MONTH_CODES and year.isdigit() and symbol not in months:
            month = _MONTH_CODES.index(code) + 1
            expiry = f"20{year}{month:02d}" if len(year) == 2 else ""
            return Future(root, expiry, _FUTURE_EXCHANGE, localSymbol=symbol, currency="USD")
    return Future(symbol, months.get(symbol, ""), _FUTURE_EXCHANGE, currency="USD")


def contract_spec(symbol: str, details: list[ContractDetails]) -> ContractSpec:
    """The one contract IB found for ``symbol``; none or several is a ``ConfigError``."""
    check(
        len(details) == 1,
        ConfigError(
            symbol,
            f"IB found {len(details)} contracts for {symbol} (need exactly one: trade a "
            "dated symbol such as ESZ5, or set contract_months for the root)",
        ),
    )
    got = details[0]
    contract = got.contract
    check(contract is not None, ConfigError(symbol, "IB's contract details hold no contract"))
    assert contract is not None
    multiplier = float(contract.multiplier) if contract.multiplier else 1.0
    return ContractSpec(
        symbol=symbol,
        con_id=int(contract.conId),
        tick=float(got.minTick),
        multiplier=multiplier,
        is_future=contract.secType == "FUT",
    )


def check_spec(spec: ContractSpec, inst: Instrument) -> None:
    """IB's tick and multiplier must be backstop's (the registry's, or the user's
    instrument): a mismatch is a ``ConfigError`` naming the symbol, never a guess. An
    instrument with no tick (a symbol backstop does not describe) takes any tick."""
    for what, ib, ours, known in (
        ("minimum tick", spec.tick, inst.tick_size, inst.tick_size > 0),
        ("multiplier", spec.multiplier, inst.multiplier, True),
    ):
        check(
            not known or math.isclose(ib, ours, rel_tol=1e-9, abs_tol=1e-12),
            ConfigError(
                spec.symbol,
                f"IB's {what} is {ib:g} but backstop's instrument says {ours:g}: fix the "
                "instrument (backstop does not guess)",
            ),
        )


def contract_name(contract: Contract) -> str:
    """A backstop name for an IB contract nobody asked about: its local symbol for a future
    (``ESZ5``), its symbol otherwise."""
    if contract.secType == "FUT" and contract.localSymbol:
        return contract.localSymbol
    return contract.symbol


def position(symbol: str, held: float, avg_cost: float, multiplier: float) -> BrokerPosition:
    """A position in backstop's terms: IB's ``avgCost`` is price x multiplier (300000 for
    one ES at 6000), so the per-unit price is ``avgCost / multiplier``."""
    return BrokerPosition(symbol=symbol, qty=float(held), avg_price=avg_cost / multiplier)


def account_values(values: list[AccountValue], account: str) -> Account:
    """Equity (NetLiquidation), cash (TotalCashValue) and buying power of ``account`` ("":
    any), in USD or the account's BASE currency; a missing value is a ``BackstopError``."""
    found: dict[str, float] = {}
    for value in values:
        if account and value.account != account:
            continue
        usable = value.currency in ("USD", "BASE") and value.tag in _ACCOUNT_TAGS
        if usable and (value.tag not in found or value.currency == "USD"):
            found[value.tag] = float(value.value)
    missing = [tag for tag in _ACCOUNT_TAGS if tag not in found]
    if missing:
        raise BackstopError(
            f"IB account {account or '(default)'}: the gateway reported no "
            f"{', '.join(missing)} (account updates not received)"
        )
    return Account(
        equity=found["NetLiquidation"],
        cash=found["TotalCashValue"],
        buying_power=found["BuyingPower"],
    )


_ACCOUNT_TAGS = ("NetLiquidation", "TotalCashValue", "BuyingPower")
