"""Alpaca's order news as backstop's broker events, each reported once per process.

The same fact can reach the adapter several ways: a submit's answer, a trade-updates
message, a REST re-read after a reconnect. ``Translator`` keeps what it has reported, so
that within one adapter's life:

- each Alpaca order is ACCEPTED once (a replacement order: REPLACED once instead), before
  any fill, cancel or expiry of it; a bracket leg Alpaca holds until its entry fills is
  ACCEPTED with the bracket (Alpaca holds it);
- each terminal status (CANCELED, EXPIRED, REJECTED) is reported once per Alpaca order; an
  order superseded by its replacement (``replaced``) ends silently, the REPLACED of its
  successor stands for it;
- each fill is one ``Execution``, however many times it is heard: by the broker's
  execution id, and by (Alpaca order id, cumulative quantity) for a fill heard once from
  the stream and once from the fill activities.

Across a restart the memory is gone: a fill may then be reported again, always with the
same execution id (the mirror books an execution id once). The stream's fill carries
Alpaca's ``execution_id``; a fill activity's id is ``<time>::<execution id>`` and the part
after ``::`` is taken, so both sources name a fill alike.
"""

from __future__ import annotations

from backstop.brokers.alpaca.parsing import FillActivity, OrderSnapshot, StreamUpdate
from backstop.domain.events import BrokerEvent, Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.orders import parse_client_order_id

K = OrderUpdateKind
_ACCEPT_EVENTS = frozenset({"new", "accepted", "pending_new"})
_TERMINAL = {"canceled": K.CANCELED, "expired": K.EXPIRED, "rejected": K.REJECTED}
_FILL_EVENTS = frozenset({"fill", "partial_fill"})


def is_replacement(snap: OrderSnapshot) -> bool:
    """An order Alpaca made to replace another (its client id is ``<cid>.<n>``)."""
    parts = parse_client_order_id(snap.client_order_id)
    return snap.replaces is not None or (parts is not None and parts.replacement > 0)


class Translator:
    """Turns snapshots, stream updates and fill activities into events, once each."""

    def __init__(self) -> None:
        self._accepted: set[str] = set()  # Alpaca order ids reported ACCEPTED or REPLACED
        self._ended: set[str] = set()  # Alpaca order ids reported terminal
        self._execs: set[str] = set()  # execution ids reported
        self._cums: set[tuple[str, float]] = set()  # (Alpaca order id, cumulative qty)
        self._rejected: set[str] = set()  # client ids refused at submit
        self._filled: dict[str, float] = {}  # Alpaca order id -> largest cumulative qty reported

    def reported_qty(self, broker_order_id: str) -> float:
        """How much of an Alpaca order's filled quantity was reported as executions."""
        return self._filled.get(broker_order_id, 0.0)

    def accepted(self, snap: OrderSnapshot, cid: str, ts: int, ts_init: int) -> list[BrokerEvent]:
        """ACCEPTED (REPLACED for a replacement, with its quantity and levels), once."""
        oid = snap.broker_order_id
        if oid in self._accepted:
            return []
        self._accepted.add(oid)
        if is_replacement(snap):
            return [
                OrderUpdate(
                    K.REPLACED,
                    cid,
                    ts,
                    ts_init,
                    broker_order_id=oid,
                    qty=snap.qty,
                    stop_price=snap.stop_price,
                    limit_price=snap.limit_price,
                )
            ]
        return [OrderUpdate(K.ACCEPTED, cid, ts, ts_init, broker_order_id=oid)]

    def status(self, snap: OrderSnapshot, cid: str, ts: int, ts_init: int) -> list[BrokerEvent]:
        """What a snapshot's status says beyond what was reported (fills excepted: those
        come from executions)."""
        if snap.status == "rejected":
            return self.ended(snap, cid, K.REJECTED, ts, ts_init, "rejected by Alpaca")
        out = self.accepted(snap, cid, ts, ts_init)
        kind = _TERMINAL.get(snap.status)
        if kind is not None:
            out += self.ended(snap, cid, kind, ts, ts_init)
        return out

    def ended(
        self,
        snap: OrderSnapshot,
        cid: str,
        kind: OrderUpdateKind,
        ts: int,
        ts_init: int,
        message: str = "",
    ) -> list[BrokerEvent]:
        """A terminal status, once per Alpaca order (after its ACCEPTED unless rejected)."""
        oid = snap.broker_order_id
        if oid in self._ended:
            return []
        out = [] if kind == K.REJECTED else self.accepted(snap, cid, ts, ts_init)
        self._ended.add(oid)
        self._accepted.add(oid)
        return [*out, OrderUpdate(kind, cid, ts, ts_init, broker_order_id=oid, message=message)]

    @staticmethod
    def ends(update: StreamUpdate) -> bool:
        """Whether the trade update ends its order (cancelled, expired, rejected)."""
        return update.event in _TERMINAL

    def stream(self, update: StreamUpdate, cid: str, ts_init: int) -> list[BrokerEvent]:
        """One trade-updates message."""
        snap, ts = update.order, update.ts_event
        if update.event in _ACCEPT_EVENTS:
            return self.accepted(snap, cid, ts, ts_init)
        if update.event in _FILL_EVENTS and update.qty is not None and update.price is not None:
            return self.fill(
                snap,
                cid,
                exec_id=update.exec_id or f"{snap.broker_order_id}:{snap.filled_qty}",
                qty=float(update.qty),
                price=float(update.price),
                cum_qty=snap.filled_qty,
                leaves_qty=max(snap.qty - snap.filled_qty, 0.0),
                ts=ts,
                ts_init=ts_init,
            )
        kind = _TERMINAL.get(update.event)
        if kind is not None:
            message = "rejected by Alpaca" if kind == K.REJECTED else ""
            return self.ended(snap, cid, kind, ts, ts_init, message)
        return []  # replaced, pending_*, done_for_day, restated...: nothing the core uses

    def activity(
        self, act: FillActivity, snap: OrderSnapshot, cid: str, ts_init: int
    ) -> list[BrokerEvent]:
        """One fill activity of the order ``snap``."""
        return self.fill(
            snap,
            cid,
            exec_id=act.exec_id,
            qty=act.qty,
            price=act.price,
            cum_qty=act.cum_qty,
            leaves_qty=act.leaves_qty,
            ts=act.ts_event,
            ts_init=ts_init,
        )

    def fill(
        self,
        snap: OrderSnapshot,
        cid: str,
        *,
        exec_id: str,
        qty: float,
        price: float,
        cum_qty: float,
        leaves_qty: float,
        ts: int,
        ts_init: int,
    ) -> list[BrokerEvent]:
        """An ``Execution`` unless this fill was reported already (ACCEPTED first)."""
        key = (snap.broker_order_id, round(cum_qty, 9))
        if exec_id in self._execs or key in self._cums:
            return []
        self._execs.add(exec_id)
        self._cums.add(key)
        oid = snap.broker_order_id
        self._filled[oid] = max(self._filled.get(oid, 0.0), cum_qty)
        out = self.accepted(snap, cid, ts, ts_init)
        out.append(
            Execution(
                client_order_id=cid,
                exec_id=exec_id,
                symbol=snap.symbol,
                side=snap.side,
                qty=qty,
                price=price,
                fee=0.0,  # Alpaca charges no commission on equities
                leaves_qty=leaves_qty,
                ts_event=ts,
                ts_init=ts_init,
                broker_order_id=snap.broker_order_id,
            )
        )
        return out

    def refused(self, cids: list[str], message: str, ts: int, ts_init: int) -> list[BrokerEvent]:
        """REJECTED for orders Alpaca refused at submit (no Alpaca order exists), once."""
        out: list[BrokerEvent] = []
        for cid in cids:
            if cid not in self._rejected:
                self._rejected.add(cid)
                out.append(OrderUpdate(K.REJECTED, cid, ts, ts_init, message=message))
        return out
