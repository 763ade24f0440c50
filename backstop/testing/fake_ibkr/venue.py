"""The gateway's order book on top of the venue-neutral fake market. No sockets here.

Orders are matched by ``fake_alpaca.market.Market`` (DESIGN.md's fill rules, shared with the
fake Alpaca: market at the next open, limits and stops once touched, the stop first when both
exits of a pair are touched in one bar, legs of an entry filled at the open live on that bar).
This module adds what is IB's own:

- ``parentId`` + ``transmit``: an order sent with ``transmit=False`` waits at the gateway,
  untransmitted, until an order of its chain (its parent, or a child of it) arrives with
  ``transmit=True``; then the whole chain goes to the market at once. Children are held
  (``PreSubmitted``) until their parent fills, then work for the parent's filled quantity;
  when one child fills the other is cancelled (a partial fill shrinks it).
- OCA groups (``ocaGroup``, ``ocaType``): two open orders of one group are a pair; type 1
  cancels the other on any fill, types 2 and 3 shrink it by a partial fill and cancel it on a
  full one. A third member, or an order joining a group that already filled, is refused (201).
- Re-placing an order's id modifies it (quantity, prices, time in force): this epoch's
  order, or an open one from before a gateway restart. Ids of finished orders of an earlier
  epoch are reissued: re-placing one is a new order. A child whose parent is unknown or
  ended unfilled is refused. ``orderRef`` is kept and echoed everywhere.

Every change becomes a ``Notice`` (the message fields and who may receive them) in
``outbox``, in the order it happened; the server delivers or drops them.
"""

from __future__ import annotations

from backstop.testing.fake_alpaca.orders import FakeOrder
from backstop.testing.fake_ibkr import messages as msg
from backstop.testing.fake_ibkr import order_msgs as omsg
from backstop.testing.fake_ibkr.contracts import Spec
from backstop.testing.fake_ibkr.orders import ORDER_TYPES, TIFS, IbOrder, PlaceRequest
from backstop.testing.fake_ibkr.reports import IB_STATUS, Notice, Reports, cancelled_error

__all__ = ["IB_STATUS", "Notice", "Rejected", "Venue"]


class Rejected(Exception):
    """A request the gateway refuses, with IB's code: 200 (no such contract), 201 (order
    rejected), 104/105 (modify refused), 135/10148 (cancel refused)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Venue(Reports):
    """IB orders, executions and the account, over one ``Market``: placing and cancelling."""

    # ---- ids and look-ups ---------------------------------------------------------------

    def live(self, client_id: int, order_id: int) -> IbOrder | None:
        """The order a placeOrder or cancelOrder with this client and id refers to: an
        untransmitted one, else the current epoch's, else an open one of an earlier epoch
        (a gateway restart keeps open orders bound to their ids)."""
        pending = self.pending.get((client_id, order_id))
        if pending is not None:
            return pending
        for o in reversed(self.orders.values()):
            if o.epoch == self.epoch and o.client_id == client_id and o.order_id == order_id:
                return o
        for o in reversed(self.orders.values()):
            if o.client_id == client_id and o.order_id == order_id and self.is_open(o):
                return o
        return None

    def highest_id(self, client_id: int) -> int:
        """The highest order id ``client_id`` used in the current epoch (0 if none)."""
        ids = [
            o.order_id
            for o in self.orders.values()
            if o.epoch == self.epoch and o.client_id == client_id
        ]
        ids += [cid_oid[1] for cid_oid in self.pending if cid_oid[0] == client_id]
        return max(ids, default=0)

    # ---- placing ------------------------------------------------------------------------

    def place(self, client_id: int, req: PlaceRequest, spec: Spec) -> None:
        """Handle one placeOrder: modify, hold untransmitted, or transmit a chain."""
        existing = self.live(client_id, req.order_id)
        if existing is not None:
            self._modify(existing, req)
            return
        self._validate(req)
        o = IbOrder(
            req.order_id,
            client_id,
            self.next_perm(),
            self.epoch,
            spec,
            req.action,
            req.total_qty,
            req.order_type,
            req.lmt_price,
            req.aux_price,
            req.tif,
            req.oca_group,
            req.oca_type,
            req.order_ref,
            req.transmit,
            req.parent_id,
            req.account or self.account,
        )
        if not req.transmit:
            self.pending[(client_id, req.order_id)] = o
            return
        chain = self._chain(o)
        for member in chain:
            self.pending.pop((member.client_id, member.order_id), None)
        self._transmit(chain)

    def _validate(self, req: PlaceRequest) -> None:
        if req.action not in ("BUY", "SELL"):
            raise Rejected(
                201, f"Order rejected - reason:action must be BUY or SELL ({req.action!r})"
            )
        if not req.total_qty > 0:
            raise Rejected(201, "Order rejected - reason:The order size must be positive")
        kind = ORDER_TYPES[req.order_type]
        if kind in ("limit", "stop_limit") and req.lmt_price is None:
            raise Rejected(201, f"Order rejected - reason:{req.order_type} needs a limit price")
        if kind in ("stop", "stop_limit") and req.aux_price is None:
            raise Rejected(201, f"Order rejected - reason:{req.order_type} needs a stop price")

    def _chain(self, o: IbOrder) -> list[IbOrder]:
        """``o`` with the untransmitted orders of its bracket: parent first, then children."""
        root_id = o.parent_id or o.order_id
        parent = o if o.parent_id == 0 else self.pending.get((o.client_id, o.parent_id))
        kids = [
            p
            for p in self.pending.values()
            if p.client_id == o.client_id and p.parent_id == root_id and p is not o
        ]
        out = [parent] if parent is not None and parent is not o else []
        if o.parent_id == 0:
            return [o, *kids]
        return [*out, *kids, o]

    def _transmit(self, chain: list[IbOrder]) -> None:
        """Send a chain to the market, or reject it whole (201) with a reason per order."""
        m = self.market
        for o in chain:
            reason = self._parent_problem(o, chain) or self._refusal(o)
            if reason is not None:
                for x in chain:
                    self._reject(x, reason)
                return
        for o in chain:
            parent = self._parent(o, chain)
            held = parent is not None and (parent.fo is None or parent.fo.status != "filled")
            fo = FakeOrder(
                str(o.perm_id),
                f"ib-{o.perm_id}",
                o.spec.tape_symbol,
                o.side,
                o.total_qty,
                ORDER_TYPES[o.order_type],
                TIFS[o.tif],
                "simple",
                m.now,
                "held" if held else "new",
                o.perm_id,
                updated_at=m.now,
                live_from=m.index + 1 + m.faults.delay_for(o.spec.tape_symbol),
                max_fill=m.faults.max_fill(o.total_qty),
            )
            if fo.type in ("limit", "stop_limit"):
                fo.limit_price = o.lmt_price
            if fo.type in ("stop", "stop_limit"):
                fo.stop_price = o.aux_price
            o.fo = fo
            self.orders[o.perm_id] = o
            m.add(fo)
            if parent is not None and parent.fo is not None:
                fo.parent_id = parent.fo.id
                if parent.fo.is_open:
                    parent.fo.legs.append(fo.id)
            self._pair(o)
            m.emit("new", fo)
        self.drain()

    def _parent(self, o: IbOrder, chain: list[IbOrder]) -> IbOrder | None:
        if not o.parent_id:
            return None
        mine = next((p for p in chain if p.order_id == o.parent_id), None)
        return mine if mine is not None else self.live(o.client_id, o.parent_id)

    def _parent_problem(self, o: IbOrder, chain: list[IbOrder]) -> str | None:
        """A child whose parent is unknown, or ended without a fill, is refused (never a
        naked exit order)."""
        if not o.parent_id:
            return None
        parent = self._parent(o, chain)
        if parent is None:
            return f"parent order {o.parent_id} not found"
        fo = parent.fo
        if fo is not None and not fo.is_open and fo.status != "filled":
            return f"parent order {o.parent_id} is {IB_STATUS[fo.status]}"
        return None

    def _refusal(self, o: IbOrder) -> str | None:
        """Why the gateway refuses ``o`` (a test's refuse rule, an OCA rule), or None."""
        for k, (symbol, count, message) in enumerate(self.refusals):
            if symbol is not None and symbol not in (o.spec.tape_symbol, o.spec.symbol):
                continue
            if count is not None:
                if count <= 0:
                    continue
                self.refusals[k] = (symbol, count - 1, message)
            return message
        if o.oca_group:
            group = [x for x in self.orders.values() if x.oca_group == o.oca_group]
            if any(x.fo is not None and x.fo.filled_qty > 0 for x in group):
                return "Order rejected - reason:OCA group is already filled"
            if sum(1 for x in group if self.is_open(x)) >= 2:
                return f"the fake serves OCA groups of two orders ({o.oca_group!r} has two)"
        return None

    def _pair(self, o: IbOrder) -> None:
        """Make ``o`` and the other open member of its OCA group, or its bracket sibling, a pair."""
        fo = o.fo
        assert fo is not None
        mate = None
        if o.oca_group:
            mate = next(
                (
                    x
                    for x in self.orders.values()
                    if x is not o and x.oca_group == o.oca_group and self.is_open(x)
                ),
                None,
            )
        if mate is None and fo.parent_id is not None:
            mate = next(
                (
                    x
                    for x in self.orders.values()
                    if x is not o
                    and x.fo is not None
                    and x.fo.parent_id == fo.parent_id
                    and x.fo.is_open
                    and x.fo.sibling_id is None
                ),
                None,
            )
        if mate is not None and mate.fo is not None:
            fo.sibling_id, mate.fo.sibling_id = mate.fo.id, fo.id

    def _reject(self, o: IbOrder, reason: str) -> None:
        o.completed_ts = self.market.now
        self.orders[o.perm_id] = o
        text = (
            reason if reason.startswith("Order rejected") else f"Order rejected - reason:{reason}"
        )
        self.outbox.append(Notice(("order", o.client_id), msg.error(o.order_id, 201, text)))
        self.outbox.append(
            Notice(("order", o.client_id), omsg.order_status(o, "Cancelled", 0.0, 0.0, 0.0))
        )

    def _modify(self, o: IbOrder, req: PlaceRequest) -> None:
        """Amend an order in place (same id): quantity, prices, time in force."""
        if o.fo is None:  # untransmitted (or rejected): take the new fields, maybe transmit
            self.pending.pop((o.client_id, o.order_id), None)
            self.orders.pop(o.perm_id, None)
            self.place(o.client_id, req, o.spec)
            return
        if req.order_type != o.order_type:
            raise Rejected(105, "Order being modified does not match original order (type)")
        fo = o.fo
        if not fo.is_open:
            raise Rejected(104, f"Cannot modify a {IB_STATUS[fo.status].lower()} order")
        if req.total_qty < fo.filled_qty:
            raise Rejected(201, "Order rejected - reason:quantity below the filled quantity")
        self._validate(req)
        o.total_qty, fo.qty = req.total_qty, req.total_qty
        o.lmt_price, o.aux_price, o.tif = req.lmt_price, req.aux_price, req.tif
        if fo.type in ("limit", "stop_limit"):
            fo.limit_price = req.lmt_price
        if fo.type in ("stop", "stop_limit"):
            fo.stop_price = req.aux_price
        fo.time_in_force = TIFS[req.tif]
        o.order_ref = req.order_ref or o.order_ref
        fo.updated_at = self.market.now
        self.market.emit("new", fo)
        self.drain()

    # ---- cancelling ---------------------------------------------------------------------

    def cancel(self, client_id: int, order_id: int) -> None:
        """cancelOrder: the order ``live`` finds for this client and id."""
        o = self.live(client_id, order_id)
        if o is None:
            raise Rejected(135, f"Can't find order with id ={order_id}")
        if o.fo is None:
            self.pending.pop((o.client_id, o.order_id), None)
            o.completed_ts = self.market.now
            self.outbox.append(Notice(("order", client_id), cancelled_error(o)))
            return
        if not o.fo.is_open:
            state = IB_STATUS[o.fo.status]
            raise Rejected(
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {state}.",
            )
        self.market.terminate(o.fo, "canceled")
        self.drain()

    def cancel_all(self) -> None:
        """reqGlobalCancel: every open order of every client, untransmitted ones dropped."""
        self.pending.clear()
        for o in list(self.orders.values()):
            if self.is_open(o) and o.fo is not None and o.fo.is_open:
                self.market.terminate(o.fo, "canceled")
        self.drain()

    # ---- market events to notices ------------------------------------------------------
