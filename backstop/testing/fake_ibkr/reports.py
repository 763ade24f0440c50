"""What the gateway tells clients: market events turned into IB messages, fills booked.

``Reports`` holds the venue's state (orders by permId, executions, the ledger, the outbox) and
turns each event of the fake market, in order, into ``Notice``s: a new or activated order ->
openOrder + orderStatus (PreSubmitted while held, else Submitted); a fill -> execDetails +
commissionReport + orderStatus, then position, portfolio and account-value updates; a cancel
or expiry -> error 202 + orderStatus Cancelled. ``venue.Venue`` adds placing and cancelling.
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
from backstop.testing.fake_ibkr.orders import IbOrder

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


class Reports:
    """The venue's state and its reports to clients."""

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

    def next_perm(self) -> int:
        """A fresh permanent id (unique for the fake's life, like TWS's permId)."""
        self._perm += 1
        return 1_000_000 + self._perm

    @staticmethod
    def is_open(o: IbOrder) -> bool:
        """Whether the order can still fill or be cancelled at the market."""
        return o.fo is not None and o.fo.is_open

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
            if ev.event == "rejected":
                self.outbox.append(Notice(to, msg.error(o.order_id, 201, "Order rejected")))
            else:
                self.outbox.append(Notice(to, cancelled_error(o)))
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
        e = Execution(
            self._exec_id(o.perm_id),
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

    def external_fill(self, spec: Spec, qty: float, price: float) -> Execution:
        """A fill of an order placed outside the API (orderId 0, clientId 0, no orderRef): it
        moves the position and shows in reqExecutions; live, only a clientId 0 session hears
        of it."""
        perm = self.next_perm()
        pnl = self.ledger.apply(
            spec.tape_symbol, qty, price, spec.multiplier, spec.sec_type == "FUT", 0.0
        )
        e = Execution(
            self._exec_id(perm),
            self.market.now,
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
            self.account,
            0.0,
            pnl,
        )
        self.executions.append(e)
        self.outbox.append(Notice(("order", 0), omsg.exec_details(-1, e), fill=True))
        self.outbox.append(Notice(("order", 0), omsg.commission_report(e), fill=True))
        self.position_notices(spec)
        return e

    def _exec_id(self, perm_id: int) -> str:
        """A deterministic execution id in TWS's shape (hex perm id, hex counter)."""
        self._exec += 1
        return f"0000{perm_id:08x}.{self._exec:08x}.01.01"


def cancelled_error(o: IbOrder) -> list[object]:
    """error 202 for an order the gateway cancelled."""
    return msg.error(o.order_id, 202, "Order Canceled - reason:")
