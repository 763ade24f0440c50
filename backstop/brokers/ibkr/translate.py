"""IB's order news as backstop's broker events, each reported once per adapter.

The same fact reaches the adapter several ways: an ``orderStatus``, an ``error``,
ib_async's own reaction to that error, an ``execDetails``, and the re-read of orders and
executions after a reconnect. ``Translator`` remembers what it reported, by client id
(``orderRef``: IB order ids are per session) and by execution id, so that:

- each order is ACCEPTED once, before any fill or end of it;
- each order ends once (CANCELED, REJECTED): a 201 and the ``Cancelled`` status that
  follows it, or ib_async's local cancel on an error, are one REJECTED;
- each execution is one ``Execution`` (by IB's execId), however often it is heard;
- each amend is one REPLACED with the order's new quantity and levels, when the gateway
  first reports the order with them (its ``openOrder`` echo or the status after it).

Across a restart the memory is gone; an execution may then come again, with the same
execId, which the mirror books once.
"""

from __future__ import annotations

from backstop.brokers.ibkr.client import FillNote
from backstop.brokers.ibkr.parsing import CANCELLED, FILLED, INACTIVE, OrderSnap, execution
from backstop.domain.events import BrokerEvent, OrderUpdate, OrderUpdateKind

K = OrderUpdateKind
_ACCEPTING = frozenset({"PreSubmitted", "Submitted", "PendingCancel", "ApiUpdate", FILLED})


def _oid(snap: OrderSnap) -> str:
    return str(snap.perm_id or snap.ib_order_id)


class Translator:
    """Turns notes and re-read orders into events, once each (see the module doc)."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()  # client ids reported ACCEPTED
        self.ended: set[str] = set()  # client ids reported terminal
        self.execs: set[str] = set()  # execution ids reported
        self.amends: dict[str, tuple[float, float | None, float | None]] = {}  # awaited

    def status(self, snap: OrderSnap, ts: int, ts_init: int) -> list[BrokerEvent]:
        """What an order's IB status says beyond what was reported (fills come from
        executions; ``Filled`` only proves it was accepted)."""
        cid = snap.client_order_id
        if not cid:
            return []  # not placed through backstop (no orderRef): reconcile's business
        if snap.status in CANCELLED:
            return self.end(snap, K.CANCELED, ts, ts_init)
        if snap.status == INACTIVE:
            return self.end(snap, K.REJECTED, ts, ts_init, "IB reports the order Inactive")
        if snap.status in _ACCEPTING:
            return self.accept(snap, ts, ts_init) + self.amended(snap, ts, ts_init)
        return []

    def accept(self, snap: OrderSnap, ts: int, ts_init: int) -> list[BrokerEvent]:
        cid = snap.client_order_id
        if cid in self.accepted or cid in self.ended:
            return []
        self.accepted.add(cid)
        return [OrderUpdate(K.ACCEPTED, cid, ts, ts_init, broker_order_id=_oid(snap))]

    def end(
        self, snap: OrderSnap, kind: OrderUpdateKind, ts: int, ts_init: int, message: str = ""
    ) -> list[BrokerEvent]:
        """A terminal status, once per client id (CANCELED after its ACCEPTED)."""
        cid = snap.client_order_id
        if not cid or cid in self.ended:
            return []
        out = [] if kind == K.REJECTED else self.accept(snap, ts, ts_init)
        self.ended.add(cid)
        self.amends.pop(cid, None)
        out.append(OrderUpdate(kind, cid, ts, ts_init, broker_order_id=_oid(snap), message=message))
        return out

    def expect_amend(self, cid: str, qty: float, stop: float | None, limit: float | None) -> None:
        self.amends[cid] = (qty, stop, limit)

    def amended(self, snap: OrderSnap, ts: int, ts_init: int) -> list[BrokerEvent]:
        """REPLACED when ``snap`` (an ``openOrder`` or ``orderStatus`` after a modify)
        shows the awaited amend's quantity and levels; once."""
        cid = snap.client_order_id
        want = self.amends.get(cid)
        if want is None or cid in self.ended or not _matches(snap, want):
            return []
        del self.amends[cid]
        return [
            OrderUpdate(
                K.REPLACED,
                cid,
                ts,
                ts_init,
                broker_order_id=_oid(snap),
                qty=snap.qty,
                stop_price=snap.stop_price,
                limit_price=snap.limit_price,
            )
        ]

    def fill(self, note: FillNote, ts_init: int) -> list[BrokerEvent]:
        """An ``Execution`` unless this execId was reported (ACCEPTED first)."""
        f = note.fill
        if not f.client_order_id or f.exec_id in self.execs:
            return []
        self.execs.add(f.exec_id)
        out: list[BrokerEvent] = []
        if f.client_order_id not in self.accepted and f.client_order_id not in self.ended:
            self.accepted.add(f.client_order_id)
            broker_id = str(f.perm_id or f.ib_order_id)
            out.append(OrderUpdate(K.ACCEPTED, f.client_order_id, f.ts_ns, ts_init, broker_id))
        out.append(execution(f, f.client_order_id, note.order_qty, ts_init))
        return out


def _matches(snap: OrderSnap, want: tuple[float, float | None, float | None]) -> bool:
    qty, stop, limit = want
    same = abs(snap.qty - qty) < 1e-9
    if stop is not None:
        same = same and snap.stop_price is not None and abs(snap.stop_price - stop) < 1e-9
    if limit is not None:
        same = same and snap.limit_price is not None and abs(snap.limit_price - limit) < 1e-9
    return same
