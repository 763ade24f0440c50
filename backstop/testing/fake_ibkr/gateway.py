"""Request handling: what the fake gateway answers to each message ib_async sends.

Every request ib_async makes on connect is answered with its End message, so a connect never
waits for a timeout: positions (61 -> 62), open orders (5 -> 53), completed orders (99 ->
102), account updates (6 -> 54), account updates multi (76 -> 74), executions (7 -> 55).
Also served: contract details (9), next ids (8), current time (49), historical bars (20),
account summary (62), positions multi (74), managed accounts (17), place / cancel / global
cancel (3, 4, 58), cancel historical data (25; keepUpToDate bars go out on ``push_bars``).
Streaming market data (1) is refused with error 354; any other message id is answered with
error 321 naming it and recorded in ``unserved``. All state is read and changed under
``lock``; notices the venue produces are delivered by ``deliver``.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

from backstop.testing.fake_ibkr import history
from backstop.testing.fake_ibkr import messages as msg
from backstop.testing.fake_ibkr import order_msgs as omsg
from backstop.testing.fake_ibkr.contracts import Spec, matches
from backstop.testing.fake_ibkr.order_msgs import ib_time
from backstop.testing.fake_ibkr.orders import Unserved, contract_request, parse_place
from backstop.testing.fake_ibkr.session import Session
from backstop.testing.fake_ibkr.venue import IB_STATUS, Notice, Rejected, Venue
from backstop.testing.fake_ibkr.wire import integer

WARNINGS = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


# Requests TWS answers with nothing: auto-bind open orders (15), market data type (59), and
# the cancels of an account summary (63), positions multi (75) and account updates multi (77)
UNANSWERED = frozenset({15, 59, 63, 75, 77})


class Gateway:
    """The fake TWS: sessions, the venue, the order-id counter and the fault flags."""

    def __init__(self, venue: Venue, first_order_id: int) -> None:
        self.venue = venue
        self.lock = threading.RLock()
        self.sessions: list[Session] = []
        self.next_id = first_order_id
        self.connectivity_down = False  # 1100 sent, 1101/1102 not yet: fill reports are lost
        self.lost: list[Notice] = []
        self.unserved: list[str] = []
        self.bugs: list[str] = []
        self.log: list[tuple[int | None, int]] = []  # (client id, message id) received

    # ---- session plumbing ---------------------------------------------------------------

    def connection_time(self) -> str:
        """The handshake's connection time: the fake's clock, never the wall clock."""
        return ib_time(self.venue.market.now)

    def attach(self, session: Session) -> None:
        """A new socket (before its startApi)."""
        with self.lock:
            self.sessions.append(session)

    def dropped(self, session: Session) -> None:
        """A socket ended: its untransmitted orders go (they never reached the market)."""
        with self.lock:
            if session in self.sessions:
                self.sessions.remove(session)
            cid = session.client_id
            if cid is not None and not any(s.client_id == cid for s in self.sessions):
                for key in [k for k in self.venue.pending if k[0] == cid]:
                    del self.venue.pending[key]

    def handle(self, session: Session, fields: list[str]) -> None:
        """Answer one message (under the lock); a bug is recorded and the client told."""
        with self.lock:
            try:
                msg_id = int(fields[0])
                self.log.append((session.client_id, msg_id))
                self._dispatch(session, msg_id, fields)
                self.deliver()
            except Exception:  # a bug in the fake: keep its traceback, never go silent
                text = traceback.format_exc()
                self.bugs.append(text)
                print(f"fake IBKR gateway bug:\n{text}", file=sys.stderr, flush=True)
                session.send(msg.error(-1, 321, "fake gateway bug: see the fake's bugs"))

    def deliver(self) -> None:
        """Send the venue's pending notices to the sessions they concern (lock held)."""
        out, self.venue.outbox = self.venue.outbox, []
        for n in out:
            targets = [s for s in self.sessions if s.client_id is not None and _wants(s, n)]
            if not targets or (n.fill and self.connectivity_down):
                self.lost.append(n)
                continue
            for s in targets:
                s.send(n.fields)

    def broadcast(self, fields: list[Any]) -> None:
        """Send one message to every started session (lock held)."""
        for s in list(self.sessions):
            if s.client_id is not None:
                s.send(fields)

    # ---- dispatch -----------------------------------------------------------------------

    def _dispatch(self, s: Session, mid: int, f: list[str]) -> None:
        v = self.venue
        if mid == 71:
            self._start_api(s, integer(f[2]))
        elif s.client_id is None:
            s.send(msg.error(-1, 321, f"message {mid} before startApi"))
        elif mid == 61:
            s.positions_sub = True
            for sym, h in v.ledger.open_positions():
                spec = self._spec_of(sym)
                s.send(msg.position(v.account, spec, h.qty, h.avg * spec.multiplier))
            s.send(msg.position_end())
        elif mid == 64:
            s.positions_sub = False
        elif mid in (5, 16):
            for o in v.orders.values():
                if v.is_open(o) and (mid == 16 or s.client_id in (0, o.client_id)):
                    assert o.fo is not None
                    status = IB_STATUS[o.fo.status]
                    s.send(omsg.open_order(o, status))
                    avg = o.fo.filled_avg_price or 0.0
                    s.send(omsg.order_status(o, status, o.fo.filled_qty, avg, 0.0))
            s.send(omsg.open_order_end())
        elif mid == 99:
            for o in v.orders.values():
                if o.completed_ts is not None and not v.is_open(o):
                    status = IB_STATUS[o.fo.status] if o.fo is not None else "Cancelled"
                    filled = o.fo.filled_qty if o.fo is not None else 0.0
                    s.send(omsg.completed_order(o, status, filled, o.completed_ts))
            s.send(omsg.completed_orders_end())
        elif mid == 6:
            s.account_sub = f[2] not in ("0", "")
            if s.account_sub:
                self._account_download(s)
        elif mid == 76:
            req = integer(f[2])
            for key, value in v.account_values().items():
                s.send(msg.account_multi(req, v.account, key, f"{value:.2f}", "USD"))
            s.send(msg.account_multi_end(req))
        elif mid == 74:
            req = integer(f[2])
            for sym, h in v.ledger.open_positions():
                spec = self._spec_of(sym)
                s.send(msg.position_multi(req, v.account, spec, h.qty, h.avg * spec.multiplier))
            s.send(msg.position_multi_end(req))
        elif mid == 62:
            req = integer(f[2])
            tags = {t for t in f[4].split(",") if t}
            for key, value in v.account_values().items():
                if not tags or key in tags or "All" in tags:
                    s.send(msg.account_summary(req, v.account, key, f"{value:.2f}", "USD"))
            s.send(msg.account_summary_end(req))
        elif mid == 7:
            self._executions(s, f)
        elif mid == 8:
            s.send(msg.next_valid_id(self._valid_id(s.client_id)))
        elif mid == 49:
            s.send(msg.current_time(v.market.now // 1_000_000_000))
        elif mid == 17:
            s.send(msg.managed_accounts(v.account))
        elif mid == 9:
            self._contract_details(s, integer(f[2]), contract_request(f, 3))
        elif mid == 20:
            self._historical(s, f)
        elif mid == 3:
            self._place(s, f)
        elif mid == 4:
            try:
                v.cancel(s.client_id, integer(f[2]))
            except Rejected as exc:
                s.send(msg.error(integer(f[2]), exc.code, str(exc)))
        elif mid == 58:
            v.cancel_all()
        elif mid == 1:
            s.send(
                msg.error(
                    integer(f[2]),
                    354,
                    "Requested market data is not subscribed "
                    "(the fake gateway serves no streaming quotes)",
                )
            )
        elif mid == 25:
            s.bar_subs.pop(integer(f[2]), None)
        elif mid in UNANSWERED:
            return  # TWS sends nothing back for these
        else:
            self.unserved.append(f"message id {mid}: {f}")
            s.send(msg.error(-1, 321, f"the fake gateway does not serve message id {mid}"))

    def _start_api(self, s: Session, client_id: int) -> None:
        for x in [x for x in self.sessions if x is not s and x.client_id == client_id]:
            if x.looks_closed():  # its client died a moment ago: let the new one in
                x.close()
                self.dropped(x)
        if any(x is not s and x.client_id == client_id for x in self.sessions):
            s.send(
                msg.error(
                    -1,
                    326,
                    f"Unable to connect as the client id {client_id} "
                    "is already in use. Retry with a unique client id.",
                )
            )
            s.close()
            return
        s.client_id = client_id
        s.send(msg.next_valid_id(self._valid_id(client_id)))
        s.send(msg.managed_accounts(self.venue.account))
        for code, text in WARNINGS:
            s.send(msg.error(-1, code, text))

    def _valid_id(self, client_id: int | None) -> int:
        used = self.venue.highest_id(client_id or 0)
        self.next_id = max(self.next_id, used + 1)
        return self.next_id

    def _spec_of(self, tape_symbol: str) -> Spec:
        return self.venue.specs[tape_symbol]

    def _find(self, req: dict[str, str]) -> list[Spec]:
        return [sp for sp in self.venue.specs.values() if matches(sp, req)]

    def _contract_details(self, s: Session, req_id: int, req: dict[str, str]) -> None:
        found = self._find(req)
        if not found:
            s.send(msg.error(req_id, 200, "No security definition has been found for the request"))
            return
        for spec in found:
            s.send(msg.contract_details(req_id, spec))
        s.send(msg.contract_details_end(req_id))

    def _historical(self, s: Session, f: list[str]) -> None:
        req_id = integer(f[1])
        found = self._find(contract_request(f, 2))
        if len(found) != 1:
            s.send(msg.error(req_id, 200, "No security definition has been found for the request"))
            return
        end, size, duration, what, fmt, keep = f[15], f[16], f[17], f[19], f[20], f[21]
        live = keep not in ("", "0")
        try:
            if live and end.strip():
                raise history.HistoryRefused("keepUpToDate needs an empty endDateTime")
            tape, now = self.venue.market.tape, self.venue.market.now
            bars, lo, hi, daily = history.select(
                tape, found[0].tape_symbol, now, end, duration, size, what
            )
        except history.HistoryRefused as exc:
            s.send(msg.error(req_id, 162, f"Historical Market Data Service error message:{exc}"))
            return
        del fmt  # intraday bars always go out as epoch seconds, daily as YYYYMMDD
        s.send(msg.historical_data(req_id, ib_time(lo), ib_time(hi), bars, daily))
        if live:
            s.bar_subs[req_id] = (found[0].tape_symbol, daily)

    def push_bars(self) -> None:
        """Send each keepUpToDate subscription the bar the clock just reached (lock held)."""
        tape, now = self.venue.market.tape, self.venue.market.now
        for s in list(self.sessions):
            for req_id, (symbol, daily) in sorted(s.bar_subs.items()):
                bar = history.latest(tape, symbol, now, daily)
                if bar is not None:
                    s.send(msg.historical_update(req_id, bar, daily))

    def _executions(self, s: Session, f: list[str]) -> None:
        """reqExecutions with its filter: client id (0: all), account, time (fills at or after
        it), symbol, secType, exchange, side. A time the fake cannot read is error 322."""
        req_id = integer(f[2])
        client, account, since, symbol, sec_type, exchange, side = (
            integer(f[3]), f[4], f[5], f[6], f[7], f[8], f[9].upper()
        )  # fmt: skip
        try:
            after = history.parse_time(since) if since.strip() else None
        except history.HistoryRefused as exc:
            s.send(msg.error(req_id, 322, f"Error processing request: execution filter time {exc}"))
            return
        for e in self.venue.executions:
            if (
                (client and e.client_id != client)
                or (account and account != e.account)
                or (after is not None and e.ts < after)
                or (symbol and symbol not in (e.spec.symbol, e.spec.local_symbol))
                or (sec_type and sec_type != e.spec.sec_type)
                or (exchange and exchange != e.spec.exchange)
                or (side and side not in (e.side, {"BOT": "BUY", "SLD": "SELL"}[e.side]))
            ):
                continue
            s.send(omsg.exec_details(req_id, e))
            s.send(omsg.commission_report(e))
        s.send(omsg.exec_details_end(req_id))

    def _place(self, s: Session, f: list[str]) -> None:
        order_id = integer(f[1])
        try:
            req = parse_place(f)
            found = self._find(req.contract)
            if len(found) != 1:
                raise Rejected(200, "No security definition has been found for the request")
            self.venue.place(s.client_id or 0, req, found[0])
        except Unserved as exc:
            s.send(
                msg.error(
                    order_id, 201, f"Order rejected - reason:the fake gateway does not serve {exc}"
                )
            )
        except Rejected as exc:
            s.send(msg.error(order_id, exc.code, str(exc)))
        self.next_id = max(self.next_id, order_id + 1)

    def _account_download(self, s: Session) -> None:
        v = self.venue
        for key, value in v.account_values().items():
            s.send(msg.account_value(key, f"{value:.2f}", "USD", v.account))
        s.send(msg.account_value("AccountCode", v.account, "", v.account))
        for sym, h in v.ledger.open_positions():
            spec = self._spec_of(sym)
            px = v.market.price(sym)
            m = spec.multiplier
            s.send(
                msg.portfolio(
                    spec,
                    h.qty,
                    px,
                    h.qty * px * m,
                    h.avg * m,
                    h.qty * (px - h.avg) * m,
                    v.ledger.realized.get(sym, 0.0),
                    v.account,
                )
            )
        s.send(msg.account_time(v.market.now))
        s.send(msg.account_end(v.account))


def _wants(s: Session, n: Notice) -> bool:
    kind = n.to[0]
    if kind == "order":
        return s.client_id in (0, n.to[1])
    if kind == "positions":
        return s.positions_sub
    return s.account_sub
