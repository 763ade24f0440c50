"""Which backstop client id an Alpaca order belongs to, derived from what Alpaca returns.

Three kinds of Alpaca order carry a client id backstop did not send as is:

- **bracket, OTO and OCO legs**: Alpaca names them itself. A leg belongs to the client id
  the ``SubmitOrder`` gave it (remembered at submit), or, after a restart, to the id the
  simulated exchange's numbering gives it: an entry ``E-n`` has its stop-loss (or trailing
  stop) ``SL-(n+1)`` / ``TS-(n+1)`` and its take-profit ``TP-(n+2)``; an OCO's primary is
  the take-profit ``TP-m`` and its stop leg is ``SL-(m-1)``.
- **replacements** (Alpaca's PATCH makes a new order): ``<cid>.<n>``, which
  ``parse_client_order_id`` reads back to ``cid``.
- **orders placed by someone else**: they keep Alpaca's client id, which parses to None,
  so the core never adopts them.

``IdBook`` is the adapter's memory of these; every entry can be rebuilt from Alpaca's
orders listed with their legs nested, which is what a restart does.
"""

from __future__ import annotations

from backstop.brokers.alpaca.parsing import OrderSnapshot, leg_role
from backstop.domain.commands import SubmitOrder
from backstop.domain.enums import OrderRole, OrderType
from backstop.domain.orders import client_order_id, parse_client_order_id


def derived_leg_id(parent_cid: str, leg: OrderSnapshot) -> str | None:
    """The client id a leg of ``parent_cid`` has by the exchange's numbering (None: the
    parent is not backstop's, or the numbering has no place for such a leg)."""
    parts = parse_client_order_id(parent_cid)
    if parts is None:
        return None
    role = leg_role(leg)
    if parts.role == OrderRole.ENTRY:
        leg_no = parts.leg_no + (2 if role == OrderRole.TAKE_PROFIT else 1)
    elif parts.role == OrderRole.TAKE_PROFIT and role != OrderRole.TAKE_PROFIT:
        leg_no = parts.leg_no - 1  # an OCO: the stop sibling numbered before the target
    else:
        return None
    if leg_no < 0:
        return None
    return client_order_id(parts.run_id, parts.cycle, role, leg_no)


def parent_candidates(cid: str) -> list[str]:
    """Client ids whose legs could hold the leg ``cid`` (inverse of ``derived_leg_id``)."""
    parts = parse_client_order_id(cid)
    if parts is None:
        return []
    run, cycle, n = parts.run_id, parts.cycle, parts.leg_no
    if parts.role in (OrderRole.STOP_LOSS, OrderRole.TRAILING):
        out = [client_order_id(run, cycle, OrderRole.TAKE_PROFIT, n + 1)]
        return ([client_order_id(run, cycle, OrderRole.ENTRY, n - 1)] if n >= 1 else []) + out
    if parts.role == OrderRole.TAKE_PROFIT and n >= 2:
        return [client_order_id(run, cycle, OrderRole.ENTRY, n - 2)]
    return []


class IdBook:
    """Alpaca order id -> backstop client id, and client id -> the live Alpaca order."""

    def __init__(self) -> None:
        self._cid: dict[str, str] = {}  # Alpaca order id -> backstop (base) client id
        self._parent: dict[str, str | None] = {}  # Alpaca order id -> parent's client id
        self._live: dict[str, str] = {}  # backstop client id -> its current Alpaca order
        self._expected: dict[tuple[str, bool], str] = {}  # (primary cid, is stop) -> leg cid
        self._replaced: set[str] = set()  # Alpaca ids of orders a replacement superseded

    def expect(self, cmd: SubmitOrder) -> None:
        """Remember the client ids ``cmd`` gives its legs (or its OCO sibling)."""
        if cmd.siblings:
            members = tuple(cmd)
            primary = next((o for o in members if o.order_type == OrderType.LIMIT), cmd)
            for other in members:
                if other is not primary:
                    self._expected[(primary.client_order_id, True)] = other.client_order_id
            return
        for leg in cmd.legs:
            is_stop = leg.order_type != OrderType.LIMIT
            self._expected[(cmd.client_order_id, is_stop)] = leg.client_order_id

    def learn(self, snap: OrderSnapshot, parent_cid: str | None = None) -> str:
        """Record ``snap`` and its legs; returns backstop's client id for ``snap``."""
        cid = self.cid_for(snap, parent_cid)
        oid = snap.broker_order_id
        self._cid[oid] = cid
        parent = parent_cid
        if parent is None and snap.replaces is not None:
            parent = self._parent.get(snap.replaces)  # a replaced leg stays its parent's
        if parent is not None or oid not in self._parent:
            self._parent[oid] = parent
        if snap.replaces is not None:
            self._replaced.add(snap.replaces)
        if snap.replaced_by is not None:
            self._replaced.add(oid)
        if oid not in self._replaced:
            self._live[cid] = oid  # the newest of a chain of replacements
        for leg in snap.legs:
            self.learn(leg, cid)
        return cid

    def cid_for(self, snap: OrderSnapshot, parent_cid: str | None = None) -> str:
        """backstop's client id for ``snap`` (see the module docstring)."""
        known = self._cid.get(snap.broker_order_id)
        if known is not None and (parent_cid is None or known != snap.client_order_id):
            return known  # (a leg first seen without its parent is named again with it)
        parts = parse_client_order_id(snap.client_order_id)
        if parts is not None:
            return parts.base
        if snap.replaces is not None and snap.replaces in self._cid:
            return self._cid[snap.replaces]
        if parent_cid is not None:
            expected = self._expected.get((parent_cid, snap.is_stop))
            derived = expected or derived_leg_id(parent_cid, snap)
            if derived is not None:
                return derived
        return snap.client_order_id

    def known(self, broker_order_id: str) -> str | None:
        """The client id of an Alpaca order seen before (None: never seen)."""
        return self._cid.get(broker_order_id)

    def parent_of(self, broker_order_id: str) -> str | None:
        """The client id of the order a leg belongs to (None: not a leg, or unknown)."""
        return self._parent.get(broker_order_id)

    def live(self, cid: str) -> str | None:
        """The Alpaca id of the newest order standing for ``cid`` (None: none seen)."""
        return self._live.get(cid)
