"""What the client's notes mean: events for the core, and connection news for the adapter.

``read`` walks the notes in the order the gateway sent them. Status and fill notes become
events through the ``Translator`` (once each); a fill takes its commission from a later
note of the same batch when its own report had not arrived. Error notes are sorted by
``codes.classify``: a refusal or a cancel becomes an event, a connectivity code becomes a
connection change, an order error on an accepted order asks for a re-read instead of
trusting ib_async's local cancel. A closed socket is a lost connection and a re-read once
it is back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from backstop.brokers.ibkr.client import (
    CommissionNote,
    ErrorNote,
    FillNote,
    Note,
    SocketNote,
    StatusNote,
)
from backstop.brokers.ibkr.codes import CodeKind, classify
from backstop.brokers.ibkr.translate import Translator
from backstop.domain.events import BrokerEvent, OrderUpdateKind

log = logging.getLogger("backstop.ibkr")
K = OrderUpdateKind


@dataclass
class Reading:
    """Events in order; ``up``: connection changes seen (False lost, True restored), in
    order; ``resync``: orders and executions must be re-read."""

    events: list[BrokerEvent] = field(default_factory=list)
    up: list[bool] = field(default_factory=list)
    resync: bool = False


def waiting(notes: list[Note]) -> bool:
    """Whether a fill in ``notes`` still waits for its commission report."""
    reported = {n.exec_id for n in notes if isinstance(n, CommissionNote)}
    return any(
        isinstance(n, FillNote) and n.fill.commission is None and n.fill.exec_id not in reported
        for n in notes
    )


def read(tr: Translator, notes: list[Note], now: int) -> Reading:
    """The meaning of ``notes`` (see the module doc); ``now`` stamps status events."""
    out = Reading()
    fees = {n.exec_id: n.commission for n in notes if isinstance(n, CommissionNote)}
    for note in notes:
        if isinstance(note, StatusNote):
            out.events += tr.status(note.order, now, now)
        elif isinstance(note, FillNote):
            fill = note.fill
            if fill.commission is None:
                fee = fees.get(fill.exec_id)
                if fee is None:
                    log.warning("IB fill %s: no commission report, booked with fee 0",
                                fill.exec_id)  # fmt: skip
                note = FillNote(replace(fill, commission=fee or 0.0), note.order_qty)
            out.events += tr.fill(note, now)
        elif isinstance(note, ErrorNote):
            _error(tr, note, now, out)
        elif isinstance(note, SocketNote):
            log.warning("IB gateway socket closed")
            out.up.append(False)
            out.resync = True
    return out


def _error(tr: Translator, note: ErrorNote, now: int, out: Reading) -> None:
    snap = note.order
    cid = snap.client_order_id if snap is not None else ""
    kind = classify(note.code, on_order=bool(cid), accepted=cid in tr.accepted)
    text = f"IB {note.code}: {note.text}"
    if snap is not None and kind in (CodeKind.REJECTED, CodeKind.CANCELED):
        end = K.REJECTED if kind == CodeKind.REJECTED else K.CANCELED
        out.events += tr.end(snap, end, now, now, text)
    elif kind == CodeKind.CONNECTION_LOST:
        log.warning("%s", text)
        out.up.append(False)
    elif kind == CodeKind.CONNECTION_RESTORED:
        log.warning("%s: re-reading orders and executions", text)
        out.up.append(True)
        out.resync = True
    elif kind == CodeKind.ORDER_ERROR:
        log.warning("%s (order %s): re-reading orders", text, cid)
        out.resync = True
    elif kind == CodeKind.OTHER:
        log.warning("%s (request %d)", text, note.req_id)
