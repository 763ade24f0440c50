"""BrokerMirror: the core's picture of the broker, projected from its own commands and from
broker events through the order state machine.

The driver never asks a live broker "what do I hold?" in the middle of a decision: it reads
the mirror, which changes only by

- ``sent(command)``: an order the core submitted is SUBMITTED (its legs and siblings too);
- ``apply(event)``: an ``OrderUpdate`` moves the order through ``ALLOWED_TRANSITIONS``; an
  ``Execution`` adds to its fill and to the symbol's position.

Executions are booked once per execution id, so a fill reported by the stream and again by
a REST re-read after a reconnect changes nothing the second time (``apply`` returns False).
An event for an order the mirror never sent (another program's, or one sent before a
restart whose mirror was lost) is adopted only through ``adopt`` by reconcile, never
guessed here. The mirror is plain data: ``to_dict``/``from_dict`` make it durable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import (
    TERMINAL_STATUSES,
    OrderRole,
    OrderStatus,
    TimeInForce,
)
from backstop.domain.events import (
    UPDATE_STATUS,
    BrokerEvent,
    BrokerOrder,
    Execution,
    OrderUpdate,
    OrderUpdateKind,
)
from backstop.domain.orders import ALLOWED_TRANSITIONS
from backstop.errors import OrderStateError

EPS = 1e-9
WORKING = (OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


@dataclass(slots=True)
class MirrorOrder:
    """One order as the core believes it is at the broker."""

    client_order_id: str
    symbol: str
    side: int
    qty: float
    order_type: int
    role: int
    trade_cycle_id: int
    strategy: int
    order_no: int  # the core's own number for it, in the order it was sent
    tif: int = int(TimeInForce.GTC)
    limit_price: float = math.nan
    stop_price: float = math.nan
    trail_percent: float = math.nan
    reduce_only: bool = False
    parent_id: str = ""
    oco_group: str = ""
    status: int = int(OrderStatus.SUBMITTED)
    filled: float = 0.0
    avg_fill: float = math.nan
    reasons: int = 0
    asked: int = 0  # reasons of a cancel or amend the core sent, kept until the broker answers
    sent_ts: int = 0
    sent_bar: int = -1
    done_ts: int = -1
    broker_order_id: str = ""

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def remaining(self) -> float:
        return self.qty - self.filled

    @property
    def protective(self) -> bool:
        return self.role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT, OrderRole.TRAILING)


_ORDER_FIELDS = tuple(f.name for f in fields(MirrorOrder))


def order_dict(o: MirrorOrder) -> dict[str, Any]:
    """``asdict`` of an order, without its deep copies (every field is a scalar): a live
    runner saves its mirror after every step that changed it."""
    return {name: getattr(o, name) for name in _ORDER_FIELDS}


@dataclass(slots=True)
class BrokerMirror:
    """Orders by client id (in the order sent), positions by symbol, executions seen."""

    orders: dict[str, MirrorOrder] = field(default_factory=dict)
    positions: dict[str, float] = field(default_factory=dict)
    exec_ids: set[str] = field(default_factory=set)
    changes: int = 0  # bumped by every change (the runner saves its state when it moved)

    # ---- what the core sent ------------------------------------------------------------
    def sent(self, command: SubmitOrder) -> list[MirrorOrder]:
        """Record a submitted order (and its legs and siblings) as SUBMITTED."""
        out = []
        for cmd in (*command, *command.legs):
            if cmd.client_order_id in self.orders:
                raise OrderStateError(f"client order id {cmd.client_order_id} was already sent")
            o = MirrorOrder(
                client_order_id=cmd.client_order_id,
                symbol=cmd.symbol,
                side=int(cmd.side),
                qty=float(cmd.qty),
                order_type=int(cmd.order_type),
                role=int(cmd.role),
                trade_cycle_id=int(cmd.trade_cycle_id),
                strategy=int(cmd.strategy),
                order_no=len(self.orders),
                tif=int(cmd.tif),
                limit_price=_nan(cmd.limit_price),
                stop_price=_nan(cmd.stop_price),
                trail_percent=_nan(cmd.trail_percent),
                reduce_only=cmd.reduce_only,
                parent_id=cmd.parent_id or "",
                oco_group=cmd.oco_group or "",
                sent_ts=cmd.ts,
                sent_bar=cmd.bar,
            )
            self.orders[o.client_order_id] = o
            self.positions.setdefault(o.symbol, 0.0)
            out.append(o)
        self.changes += 1
        return out

    def asked(self, client_order_id: str, reasons: int) -> None:
        """The core sent a cancel or an amend for ``reasons``: they are the order's once the
        broker answers (CANCELED, EXPIRED, REPLACED), whether or not the answer repeats
        them (a broker never does; a native OCO cancel may beat ours)."""
        o = self.orders.get(client_order_id)
        if o is not None and o.working:
            o.asked |= reasons

    # ---- what the broker said ----------------------------------------------------------
    def apply(self, event: BrokerEvent) -> bool:
        """Apply one broker event; return False when it changes nothing (a duplicate
        execution, an update for an order already in that state, or one the mirror does not
        know). An illegal transition raises ``OrderStateError``."""
        o = self.orders.get(event.client_order_id)
        if o is None:
            return False
        changed = self._fill(o, event) if isinstance(event, Execution) else self._update(o, event)
        self.changes += changed
        return changed

    def _fill(self, o: MirrorOrder, ex: Execution) -> bool:
        if ex.exec_id in self.exec_ids:
            return False
        self.exec_ids.add(ex.exec_id)
        if o.status == OrderStatus.SUBMITTED:
            self._move(o, OrderStatus.ACCEPTED)  # a fill proves the broker accepted it
        prev = o.filled
        o.filled = prev + ex.qty
        o.avg_fill = ex.price if prev == 0.0 else (o.avg_fill * prev + ex.price * ex.qty) / o.filled
        done = ex.leaves_qty <= EPS or o.filled >= o.qty - EPS
        self._move(o, OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED)
        if done:
            o.done_ts = ex.ts_event
        pos = self.positions.get(o.symbol, 0.0) + o.side * ex.qty
        self.positions[o.symbol] = 0.0 if abs(pos) < EPS else pos
        return True

    def _update(self, o: MirrorOrder, ev: OrderUpdate) -> bool:
        o.reasons |= ev.reasons
        if ev.kind != OrderUpdateKind.ACCEPTED:
            o.reasons |= o.asked
            o.asked = 0
        if ev.broker_order_id:
            o.broker_order_id = ev.broker_order_id
        if ev.kind == OrderUpdateKind.REPLACED:
            if ev.qty is not None:
                o.qty = float(ev.qty)
            if ev.stop_price is not None:
                o.stop_price = float(ev.stop_price)
            if ev.limit_price is not None:
                o.limit_price = float(ev.limit_price)
            if ev.order_type is not None:
                o.order_type = int(ev.order_type)
            return True
        new = UPDATE_STATUS[ev.kind]
        if o.status == new or (o.status in TERMINAL_STATUSES and new == OrderStatus.ACCEPTED):
            return False  # an older or repeated report must not undo a newer state
        if new == OrderStatus.ACCEPTED and o.status == OrderStatus.PARTIALLY_FILLED:
            return False
        self._move(o, new)
        if o.status in TERMINAL_STATUSES:
            o.done_ts = ev.ts_event
        return True

    def _move(self, o: MirrorOrder, new: OrderStatus) -> None:
        cur = OrderStatus(o.status)
        if cur == new == OrderStatus.PARTIALLY_FILLED:
            return
        if (cur, new) not in ALLOWED_TRANSITIONS:
            raise OrderStateError(f"order {o.client_order_id}: {cur.name} -> {new.name}")
        o.status = int(new)

    # ---- reconcile -----------------------------------------------------------------------
    def adopt(self, order: BrokerOrder, role: OrderRole, cycle: int, strategy: int) -> MirrorOrder:
        """Take a broker order the mirror lost (ours by its client id) as the broker has it."""
        o = MirrorOrder(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=int(order.side),
            qty=order.qty,
            order_type=int(order.order_type),
            role=int(role),
            trade_cycle_id=cycle,
            strategy=strategy,
            order_no=len(self.orders),
            tif=int(order.tif),
            limit_price=_nan(order.limit_price),
            stop_price=_nan(order.stop_price),
            reduce_only=role != OrderRole.ENTRY,
            parent_id=order.parent_id or "",
            status=int(order.status),
            filled=order.filled_qty,
            avg_fill=_nan(order.avg_fill_price),
            broker_order_id=order.broker_order_id,
        )
        self.orders[o.client_order_id] = o
        self.positions.setdefault(o.symbol, 0.0)
        self.changes += 1
        return o

    # ---- views the decisions read ----------------------------------------------------------
    def position(self, symbol: str) -> float:
        return self.positions.get(symbol, 0.0)

    def working(self, symbol: str | None = None) -> list[MirrorOrder]:
        """Working orders (of one symbol, or all), in the order they were sent."""
        return [
            o for o in self.orders.values() if o.working and (symbol is None or o.symbol == symbol)
        ]

    def protective_qty(self, symbol: str) -> float:
        """Quantity the symbol's working protective orders would close: an OCO group counts
        once (its largest remaining), a lone protective order by its remaining; legs held for
        an entry with no fill yet count nothing."""
        groups: dict[str, float] = {}
        for o in self.working(symbol):
            parent = self.orders.get(o.parent_id) if o.parent_id else None
            if parent is not None and parent.working and parent.filled <= EPS:
                continue  # a leg held for an entry that has not filled covers nothing yet
            if o.protective:
                key = o.oco_group or o.client_order_id
                groups[key] = max(groups.get(key, 0.0), o.remaining)
        return sum(groups.values())

    # ---- durability ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": [order_dict(o) for o in self.orders.values()],
            "positions": dict(sorted(self.positions.items())),
            "exec_ids": sorted(self.exec_ids),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrokerMirror:
        orders = {o["client_order_id"]: MirrorOrder(**o) for o in data["orders"]}
        return cls(orders, dict(data["positions"]), set(data["exec_ids"]))


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
