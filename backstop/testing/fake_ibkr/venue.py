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
- Re-placing an open order's id in the same gateway epoch modifies it (quantity, prices,
  time in force); order ids of an earlier epoch (before a gateway restart) may be reused by
  new orders, which are then new orders. ``orderRef`` is kept and echoed everywhere.

Every change becomes a ``Notice`` (the message fields and who may receive them) in
``outbox``, in the order it happened; the server delivers or drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

from backstop.testing.fake_alpaca.market import Event, Market
from backstop.testing.fake_alpaca.orders import FakeOrder
from backstop.testing.fake_ibkr import messages as msg
from backstop.testing.fake_ibkr import order_msgs as omsg
from backstop.testing.fake_ibkr.account import Ledger
from backstop.testing.fake_ibkr.contracts import Spec
from backstop.testing.fake_ibkr.order_msgs import Execution
from backstop.testing.fake_ibkr.orders import ORDER_TYPES, TIFS, IbOrder, PlaceRequest

IB_STATUS = {
    "held": "PreSubmitted",
    "new": "Submitted",
    "accepted": "Submitted",
    "partially_filled": "Submitted",
    "filled": "Filled",
    "canceled": "Cancelled",
    "expired": "Cancelled",
    "rejected": "Cancelled",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for clients: ``to`` is ("order", clientId), ("account",) or ("positions",)."""

    to: tuple[object, ...]
    fields: list[object]
    fill: bool = False  # part of a fill report (lost while connectivity is down)


class Rejected(Exception):
    """An order the gateway refuses: ``code`` 201 (rejected), 103 (duplicate id), 104..."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Venue:
    """IB orders, executions and the account, over one ``Market``."""

    def __init__(self, market: Market, specs: dict[str, Spec], account: str, cash: float) -> None:
        self.market = market
        self.specs = specs
        self.account = account
        self.ledger = Ledger(cash)
        self.commission = 0.0  # per contract or share, each fill
        self.epoch = 1
        self.orders: dict[int, IbOrder] = {}  # by permId, placement order
        self.pending: dict[tuple[int, int], IbOrder] = {}  # untransmitted, by (client, id)
        self.executions: list[Execution] = []
        self.outbox: list[Notice] = []
        self.refusals: list[tuple[str | None, int | None, str]] = []  # symbol, count, message
        self._seen = 0
        self._perm = 0
        self._exec = 0

    # ---- ids and look-ups ---------------------------------------------------------------

    def next_perm(self) -> int:
        """A fresh permanent id (unique for the fake's life, like TWS's permId)."""
        self._perm += 1
        return 1_000_000 + self._perm

    def live(self, client_id: int, order_id: int) -> IbOrder | None:
        """The current epoch's order with this client and id (transmitted or not)."""
        pending = self.pending.get((client_id, order_id))
        if pending is not None:
            return pending
        for o in reversed(self.orders.values()):
            if o.epoch == self.epoch and o.client_id == client_id and o.order_id == order_id:
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

    @staticmethod
    def is_open(o: IbOrder) -> bool:
        """Whether the order can still fill or be cancelled at the market."""
        return o.fo is not None and o.fo.is_open

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
            reason = self._refusal(o)
            if reason is not None:
                for x in chain:
                    self._reject(x, reason)
                return
        for o in chain:
            parent = None
            if o.parent_id:
                parent = next((p for p in chain if p.order_id == o.parent_id), None)
                if parent is None:
                    parent = self.live(o.client_id, o.parent_id)
            held = parent is not None and parent.fo is not None and parent.fo.status != "filled"
            held = held or (parent is not None and parent.fo is None)
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
        """cancelOrder: this epoch's order first, else an open one of an earlier epoch."""
        o = self.live(client_id, order_id)
        if o is None:
            o = next(
                (
                    x
                    for x in self.orders.values()
                    if x.client_id == client_id and x.order_id == order_id and self.is_open(x)
                ),
                None,
            )
        if o is None:
            raise Rejected(135, f"Can't find order with id ={order_id}")
        if o.fo is None:
            self.pending.pop((o.client_id, o.order_id), None)
            o.completed_ts = self.market.now
            self.outbox.append(Notice(("order", client_id), _cancelled_error(o)))
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

    def drain(self) -> None:
        """Turn the market's new events into notices (and book fills in the ledger)."""
        for _ in range(1_000_000):  # handling an event may add events (an OCA type 1 cancel)
            if self._seen >= len(self.market.events):
                return
            ev = self.market.events[self._seen]
            self._seen += 1
            o = self.orders.get(int(ev.order.id))
            if o is not None and o.fo is not None:
                self._notice(o, ev)
        raise RuntimeError("fake gateway: market events did not settle")

    def _notice(self, o: IbOrder, ev: Event) -> None:
        to = ("order", o.client_id)
        fo = o.fo
        assert fo is not None
        snap = ev.order
        status = IB_STATUS.get(ev.event, IB_STATUS.get(snap.status, "Submitted"))
        avg = snap.filled_avg_price or 0.0
        if ev.event == "new":
            status = IB_STATUS[snap.status]
            self.outbox.append(Notice(to, omsg.open_order(o, status)))
            self.outbox.append(Notice(to, omsg.order_status(o, status, snap.filled_qty, avg, 0.0)))
        elif ev.event in ("fill", "partial_fill"):
            e = self._book(o, float(ev.qty or 0.0), float(ev.price or 0.0), snap)
            status = "Filled" if ev.event == "fill" else "Submitted"
            self.outbox.append(Notice(to, omsg.exec_details(-1, e), fill=True))
            self.outbox.append(Notice(to, omsg.commission_report(e), fill=True))
            self.outbox.append(
                Notice(to, omsg.order_status(o, status, snap.filled_qty, avg, e.price), fill=True)
            )
            if status == "Filled":
                o.completed_ts = ev.ts
            self._after_fill(o, ev.event == "fill")
            self.position_notices(o.spec)
        elif ev.event in ("canceled", "expired", "rejected"):
            o.completed_ts = ev.ts
            code = 201 if ev.event == "rejected" else 202
            if code == 202:
                self.outbox.append(Notice(to, _cancelled_error(o)))
            self.outbox.append(Notice(to, omsg.order_status(o, status, snap.filled_qty, avg, 0.0)))

    def _after_fill(self, o: IbOrder, full: bool) -> None:
        """The pair's other order after a partial fill: OCA type 1 cancels it; otherwise the
        market shrank it by the fill, and the client is told its new quantity."""
        fo = o.fo
        if full or fo is None or not fo.sibling_id:
            return
        sib_fo = self.market.orders.get(fo.sibling_id)
        if sib_fo is None or not sib_fo.is_open:
            return
        if o.oca_type == 1:
            self.market.terminate(sib_fo, "canceled")
            return
        sib = self.orders[int(sib_fo.id)]
        if sib_fo.qty != sib.total_qty:
            sib.total_qty = sib_fo.qty
            status = IB_STATUS[sib_fo.status]
            to = ("order", sib.client_id)
            self.outbox.append(Notice(to, omsg.open_order(sib, status)))
            self.outbox.append(
                Notice(
                    to,
                    omsg.order_status(
                        sib, status, sib_fo.filled_qty, sib_fo.filled_avg_price or 0.0, 0.0
                    ),
                )
            )

    def _book(self, o: IbOrder, qty: float, price: float, snap: FakeOrder) -> Execution:
        spec = o.spec
        dq = qty if o.action == "BUY" else -qty
        fee = self.commission * qty
        pnl = self.ledger.apply(
            spec.tape_symbol, dq, price, spec.multiplier, spec.sec_type == "FUT", fee
        )
        self._exec += 1
        e = Execution(
            f"0000{o.perm_id:08x}.{self._exec:08x}.01.01",
            self.market.now,
            o.order_id,
            o.client_id,
            o.perm_id,
            spec,
            "BOT" if o.action == "BUY" else "SLD",
            qty,
            price,
            snap.filled_qty,
            snap.filled_avg_price or price,
            o.order_ref,
            o.account,
            fee,
            pnl,
        )
        self.executions.append(e)
        return e

    def position_notices(self, spec: Spec) -> None:
        """position and portfolio updates for one contract, plus the account values."""
        h = self.ledger.holdings.get(spec.tape_symbol)
        qty, avg = (h.qty, h.avg) if h is not None else (0.0, 0.0)
        cost = avg * spec.multiplier
        self.outbox.append(Notice(("positions",), msg.position(self.account, spec, qty, cost)))
        px = self.market.price(spec.tape_symbol)
        value = qty * px * spec.multiplier
        unreal = qty * (px - avg) * spec.multiplier
        real = self.ledger.realized.get(spec.tape_symbol, 0.0)
        self.outbox.append(
            Notice(
                ("account",), msg.portfolio(spec, qty, px, value, cost, unreal, real, self.account)
            )
        )
        for key, value in self.account_values().items():
            self.outbox.append(
                Notice(("account",), msg.account_value(key, f"{value:.2f}", "USD", self.account))
            )

    def account_values(self) -> dict[str, float]:
        """The ledger's account values at the market's last closes."""
        by_symbol = {s.tape_symbol: s for s in self.specs.values()}
        futures = {s for s, sp in by_symbol.items() if sp.sec_type == "FUT"}
        return self.ledger.values(
            self.market.price, lambda s: by_symbol[s].multiplier if s in by_symbol else 1.0, futures
        )


def _cancelled_error(o: IbOrder) -> list[object]:
    return msg.error(o.order_id, 202, "Order Canceled - reason:")


def external_fill(venue: Venue, spec: Spec, qty: float, price: float) -> Execution:
    """A fill of an order placed outside the API (orderId 0, clientId 0, no orderRef): it moves
    the position and shows in reqExecutions; live, only a clientId 0 session hears of it."""
    perm = venue.next_perm()
    pnl = venue.ledger.apply(
        spec.tape_symbol, qty, price, spec.multiplier, spec.sec_type == "FUT", 0.0
    )
    venue._exec += 1
    e = Execution(
        f"0000{perm:08x}.{venue._exec:08x}.01.01",
        venue.market.now,
        0,
        0,
        perm,
        spec,
        "BOT" if qty > 0 else "SLD",
        abs(qty),
        price,
        abs(qty),
        price,
        "",
        venue.account,
        0.0,
        pnl,
    )
    venue.executions.append(e)
    venue.outbox.append(Notice(("order", 0), omsg.exec_details(-1, e), fill=True))
    venue.outbox.append(Notice(("order", 0), omsg.commission_report(e), fill=True))
    venue.position_notices(spec)
    return e
