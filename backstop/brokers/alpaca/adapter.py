"""``AlpacaBroker``: backstop's Broker port v2 on Alpaca, through alpaca-py.

It translates and holds no trading logic: the core decides legs, OCO cancels and resizes.

Submissions are idempotent by client id. A submit answered 422 40010001 ("client_order_id
must be unique": alpaca-py's own retry of a 504 on an order Alpaca accepted ends so), a
5xx, a timeout or a connection dropped mid-request means "maybe placed": the order is
looked up by client id and adopted, never sent again. 40010001 is also Alpaca's code for a
malformed request, so it is a refusal when no order holds the id. A 403/422 refusal of a
new id is a REJECTED ``OrderUpdate`` carrying Alpaca's message (an exit crossing zero: 403
40310000), for the order and each of its legs. A broker that cannot be reached, or an
unknown outcome with no order found, raises ``BrokerUnavailable``: nothing was placed, and
sending the command again with the same client id is safe.

Alpaca's replace (PATCH) makes a new order; it takes the client id ``<cid>.<n>``, whose
events are all reported under ``cid``, starting with one REPLACED carrying the new
quantity and levels. The live order of a client id is found again after a restart by
following Alpaca's ``replaced_by`` links from the order holding the client id (a bracket
leg: from its parent, see ``ids``).

Events (``drain_events``) come from the trade-updates stream in the order Alpaca sent
them. After every (re)connection of the stream, the adapter re-reads open and recently
closed orders (legs nested) and the fill activities over REST and reports what the stream
lost. What is reported once and what may repeat is said in ``translate``: within one
adapter's life every status change and every fill is reported exactly once; across a
restart a fill may come again with the same execution id. A command's answer is reported
after what the stream said before it, and an order's fills before its end. A socket that
stays open but silent is not a reconnect: ``resync()`` on a timer catches up with it.
"""

from __future__ import annotations

import queue
from types import TracebackType

import polars as pl

from backstop.brokers.alpaca.client import (
    DUPLICATE_CLIENT_ID,
    AlpacaClient,
    AlpacaRefused,
    OutcomeUnknown,
)
from backstop.brokers.alpaca.config import AlpacaConfig, AlpacaKeys
from backstop.brokers.alpaca.ids import IdBook, parent_candidates
from backstop.brokers.alpaca.parsing import FillActivity, OrderSnapshot, broker_order
from backstop.brokers.alpaca.stream import TradeStream
from backstop.brokers.alpaca.translate import Translator
from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderType
from backstop.domain.events import Account, BrokerEvent, BrokerOrder, BrokerPosition, Execution
from backstop.domain.orders import parse_client_order_id, replacement_client_id
from backstop.engine.broker import BrokerUnavailable
from backstop.engine.clock import Clock, LiveClock
from backstop.errors import BackstopError

MAX_REPLACEMENTS = 50  # links followed from an order to its newest replacement


class AlpacaBroker:
    """The Broker port v2 on Alpaca. ``start()`` (or ``with``) starts the trade-updates
    stream; ``close()`` stops it. ``stream=False`` leaves it off (REST only: events then
    come only from submit, cancel and amend answers and from ``resync()``)."""

    def __init__(
        self,
        config: AlpacaConfig,
        keys: AlpacaKeys | None = None,
        *,
        clock: Clock | None = None,
        stream: bool = True,
    ) -> None:
        keys = AlpacaKeys.from_env() if keys is None else keys
        self._config = config
        self._clock = LiveClock() if clock is None else clock
        self._client = AlpacaClient(config, keys)
        self._stream = TradeStream(config, keys, self._clock.now_ns) if stream else None
        self._ids = IdBook()
        self._tr = Translator()
        self._pending: list[BrokerEvent] = []
        self._synced_connects = 0
        self._stream_error: Exception | None = None
        # the last re-sync: Alpaca's time then, and the orders open then (a later re-sync
        # reads what changed since: open orders, orders and fills after that time, and those
        # open then that are not any more)
        self._synced_ns: int | None = None
        self._open_then: set[str] = set()
        # executions reported so far, by where they were heard first: the trade-updates
        # stream, or a REST read (a re-sync after a reconnect, a command's answer)
        self.fills_heard: dict[str, int] = {"stream": 0, "rest": 0}

    def __repr__(self) -> str:
        return f"AlpacaBroker(paper={self._config.paper}, {self._client!r})"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> AlpacaBroker:
        if self._stream is not None:
            self._stream.start()
        return self

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()

    def __enter__(self) -> AlpacaBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def wait_connected(self, connects: int = 1, timeout_s: float = 10.0) -> bool:
        """Wait for the stream's ``connects``-th connection (False: not in time)."""
        return self._stream is not None and self._stream.wait_connected(connects, timeout_s)

    @property
    def stream_connects(self) -> int:
        """Connections the trade-updates stream completed (0: none, or no stream)."""
        return 0 if self._stream is None else self._stream.connects

    @property
    def stream_received(self) -> int:
        """Trade updates the stream has received so far (read or not)."""
        return 0 if self._stream is None else self._stream.received

    # ------------------------------------------------------------ commands

    def submit(self, command: SubmitOrder) -> None:
        """Place ``command`` (legs as a native bracket / OTO, siblings as an OCO)."""
        self._ids.expect(command)
        snap = self._place(command)
        if snap is None:
            return
        if (command.legs or command.siblings) and not snap.legs:
            snap = self._client.by_id(snap.broker_order_id)  # the legs, nested
        self._ids.learn(snap)
        self._report_snapshot(snap)

    def _place(self, command: SubmitOrder) -> OrderSnapshot | None:
        """Send once; the order placed or adopted (None: refused, REJECTED reported)."""
        primary = _primary(command)
        try:
            return self._client.submit(command)
        except AlpacaRefused as err:
            # 40010001 is also Alpaca's code for a malformed request: only an order found
            # under the client id makes it "already placed"
            snap = self._adopt(command, primary) if err.code == DUPLICATE_CLIENT_ID else None
            if snap is None:
                cids = [o.client_order_id for o in command]
                cids += [leg.client_order_id for leg in command.legs]
                now = self._clock.now_ns()
                self._pending += self._tr.refused(cids, err.message, now, now)
            return snap
        except OutcomeUnknown as err:
            snap = self._adopt(command, primary)
            if snap is None:
                raise BrokerUnavailable(
                    f"{err}; Alpaca holds no order {primary}: nothing placed (sending it "
                    "again with the same client id is safe)"
                ) from None
            return snap

    def _adopt(self, command: SubmitOrder, primary: str) -> OrderSnapshot | None:
        """The order a maybe-placed submit made, looked up by client id (never resent);
        None when Alpaca holds none."""
        snap = self._client.by_client_id(primary)
        if snap is None:
            return None
        if snap.symbol != command.symbol or snap.side != command.side:
            raise BackstopError(
                f"submit {primary}: Alpaca's order with this client id is a {snap.side.name} "
                f"of {snap.symbol}, not this {command.side.name} of {command.symbol}"
            )
        return snap

    def cancel(self, command: CancelOrder) -> None:
        """Cancel a working order; one already ended is no error (its end is reported if
        it was not yet)."""
        snap = self._live(command.client_order_id)
        if snap is not None and snap.is_open:
            try:
                self._client.cancel(snap.broker_order_id, command.client_order_id)
            except AlpacaRefused as err:
                if err.status != 422:  # 422: not cancelable (it ended meanwhile)
                    raise
            snap = self._client.by_id(snap.broker_order_id)
        if snap is None:
            raise BackstopError(f"cancel {command.client_order_id}: Alpaca has no such order")
        self._ids.learn(snap, self._ids.parent_of(snap.broker_order_id))
        self._report_snapshot(snap, nested=False)

    def amend(self, command: AmendOrder) -> None:
        """Replace a working order's quantity or levels (Alpaca makes a new order, under
        ``<cid>.<n>``); an order already ended is left as it is."""
        cid = command.client_order_id
        snap = self._live(cid)
        if snap is None:
            raise BackstopError(f"amend {cid}: Alpaca has no such order")
        if not snap.is_open:
            self._report_snapshot(snap, nested=False)
            return
        own = parse_client_order_id(cid)
        base = cid if own is None else own.base
        parts = parse_client_order_id(snap.client_order_id)
        new_cid = replacement_client_id(base, (parts.replacement if parts else 0) + 1)
        try:
            new = self._client.replace(snap.broker_order_id, command, new_cid)
        except OutcomeUnknown as err:
            found = self._client.by_client_id(new_cid)
            if found is None:
                raise BrokerUnavailable(f"{err}; Alpaca holds no {new_cid}: not replaced") from None
            new = found
        except AlpacaRefused as err:
            found = self._client.by_client_id(new_cid) if err.code == DUPLICATE_CLIENT_ID else None
            if found is None:
                snap = self._client.by_id(snap.broker_order_id)
                if snap.is_open:
                    raise  # refused while the order works: the core hears it, nothing changed
                self._report_snapshot(snap, nested=False)  # it ended meanwhile
                return
            new = found
        self._ids.learn(new)
        self._report_snapshot(new, nested=False)

    # ------------------------------------------------------------ events

    def drain_events(self) -> list[BrokerEvent]:
        """Events since the last call, in the order they were heard (the stream's, and the
        answers to commands after what the stream had said before them), then what a REST
        re-read finds the stream lost when it (re)connected meanwhile."""
        self._pump()
        out, self._pending = self._pending, []
        error, self._stream_error = self._stream_error, None
        if error is not None:
            raise BackstopError(f"an Alpaca trade update cannot be read: {error}") from error
        if self._stream is not None and self._stream.connects > self._synced_connects:
            self._synced_connects = self._stream.connects
            out += self.resync()
        return out

    def _pump(self) -> None:
        """Translate what the stream queued so far into pending events (a command's answer
        is reported after what the stream said before it)."""
        while self._stream is not None and self._stream_error is None:
            try:
                update, ts_init = self._stream.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(update, Exception):
                self._stream_error = update  # raised by drain_events
                return
            snap = update.order
            if self._ids.known(snap.broker_order_id) is None and not _ours(snap):
                self._refresh()  # a leg Alpaca named: its parent says whose it is
            cid = self._ids.learn(snap, self._ids.parent_of(snap.broker_order_id))
            if self._tr.ends(update):  # its fills the stream lost come first, never after
                self._pending += self._unreported_fills(snap)
            events = self._tr.stream(update, cid, ts_init)
            self.fills_heard["stream"] += sum(isinstance(e, Execution) for e in events)
            self._pending += events

    def refresh(self) -> None:
        """Re-read orders and fills over REST now; what the stream has not reported yet
        comes with the next ``drain_events`` (a runner without the stream, or one that must
        not depend on its timing, calls it after every bar)."""
        self._pending += self.resync()

    def resync(self) -> list[BrokerEvent]:
        """Re-read open and recently closed orders and the fills over REST; the events
        not reported yet (the runner may call it on a timer too: silent sockets exist).

        The first re-sync reads back ``resync_lookback_s``; each later one only what can
        have changed since the last: open orders, orders submitted and fills stamped after
        it (less a second of margin), and each order open then that is not now, by id. So
        a runner that re-syncs after every bar asks for the bar's news, not the session."""
        now = self._client.broker_now_ns()
        if self._synced_ns is None:
            after = now - int(self._config.resync_lookback_s * 1e9)
        else:
            after = self._synced_ns - RESYNC_MARGIN_NS
        snaps = self._refresh(after)
        listed = {s.broker_order_id for s in snaps}
        for oid in sorted(self._open_then - listed):  # ended since, submitted before
            for snap in self._client.by_id(oid).flat():
                if snap.broker_order_id not in listed:
                    listed.add(snap.broker_order_id)
                    snaps.append(snap)
        snaps.sort(key=lambda s: s.created_ns)
        self._open_then = {s.broker_order_id for s in snaps if s.is_open}
        self._synced_ns = now
        ts_init = self._clock.now_ns()
        out: list[BrokerEvent] = []
        for snap in snaps:
            if snap.status not in ("rejected", "replaced"):
                cid = self._cid(snap)
                out += self._tr.accepted(snap, cid, snap.created_ns, ts_init)
        out += self._fills_events(self._client.fills(after), snaps)
        for snap in sorted(snaps, key=lambda s: (s.updated_ns, s.broker_order_id)):
            if snap.status in ("canceled", "expired", "rejected"):
                out += self._tr.status(snap, self._cid(snap), snap.updated_ns, ts_init)
        return out

    def _refresh(self, after_ns: int | None = None) -> list[OrderSnapshot]:
        """Every open order and every order since ``after_ns`` (Alpaca's clock minus the
        look-back when None), legs nested, learnt; flat, oldest first, each once."""
        if after_ns is None:
            after_ns = self._client.broker_now_ns() - int(self._config.resync_lookback_s * 1e9)
        seen: dict[str, OrderSnapshot] = {}
        for top in self._client.orders("open") + self._client.orders("all", after_ns=after_ns):
            self._ids.learn(top)
            for snap in top.flat():
                seen[snap.broker_order_id] = snap
        return sorted(seen.values(), key=lambda s: s.created_ns)

    def _report_snapshot(self, snap: OrderSnapshot, *, nested: bool = True) -> None:
        """Report what ``snap`` (and its legs) says beyond what was reported; fills it has
        that were not reported yet (the stream is late or was down) are read first, so a
        fill is never reported after its order's end."""
        self._pump()
        now = self._clock.now_ns()
        for one in snap.flat() if nested else [snap]:
            self._pending += self._unreported_fills(one)
            if one.status != "replaced":
                self._pending += self._tr.status(one, self._cid(one), one.updated_ns, now)

    def _unreported_fills(self, snap: OrderSnapshot) -> list[BrokerEvent]:
        """The fills ``snap`` counts that were not reported yet (the stream is late, or lost
        them in an outage), read over REST: reported before the order's end."""
        if snap.filled_qty <= self._tr.reported_qty(snap.broker_order_id) + 1e-9:
            return []
        acts = self._client.fills(snap.created_ns - 1000)
        mine = [a for a in acts if a.broker_order_id == snap.broker_order_id]
        return self._fills_events(mine, [snap])

    def _fills_events(
        self, acts: list[FillActivity], snaps: list[OrderSnapshot]
    ) -> list[BrokerEvent]:
        by_id = {s.broker_order_id: s for s in snaps}
        ts_init = self._clock.now_ns()
        out: list[BrokerEvent] = []
        for act in sorted(acts, key=lambda a: (a.ts_event, a.activity_id)):
            snap = by_id.get(act.broker_order_id) or self._client.by_id(act.broker_order_id)
            by_id[act.broker_order_id] = snap
            out += self._tr.activity(act, snap, self._cid(snap), ts_init)
        self.fills_heard["rest"] += sum(isinstance(e, Execution) for e in out)
        return out

    def _cid(self, snap: OrderSnapshot) -> str:
        return self._ids.cid_for(snap, self._ids.parent_of(snap.broker_order_id))

    # ------------------------------------------------------------ snapshots

    def _live(self, cid: str) -> OrderSnapshot | None:
        """The newest Alpaca order standing for backstop's ``cid`` (any state), found from
        memory, by client id, or as a leg of its parent; replacements followed."""
        parts = parse_client_order_id(cid)
        base = cid if parts is None else parts.base
        oid = self._ids.live(base)
        snap = None if oid is None else self._client.by_id(oid)
        if snap is None:
            snap = self._client.by_client_id(base)
        if snap is None:
            for parent in parent_candidates(base):
                top = self._client.by_client_id(parent)
                if top is not None:
                    self._ids.learn(self._client.by_id(top.broker_order_id))
                    oid = self._ids.live(base)
                    if oid is not None:
                        snap = self._client.by_id(oid)
                        break
        if snap is None:
            return None
        for _ in range(MAX_REPLACEMENTS):
            if snap.replaced_by is None:
                break
            self._ids.learn(snap, self._ids.parent_of(snap.broker_order_id))
            snap = self._client.by_id(snap.replaced_by)
        self._ids.learn(snap, self._ids.parent_of(snap.broker_order_id))
        return snap

    def order(self, client_order_id: str) -> BrokerOrder | None:
        """The order standing for this client id, in any state (None: Alpaca has none)."""
        snap = self._live(client_order_id)
        if snap is None:
            return None
        parent = self._ids.parent_of(snap.broker_order_id)
        return broker_order(snap, self._ids.cid_for(snap, parent), parent)

    def open_orders(self) -> list[BrokerOrder]:
        """Every working order (bracket legs held for their entry included), oldest first,
        each under backstop's client id (a leg with its parent's)."""
        seen: dict[str, OrderSnapshot] = {}
        for top in self._client.orders("open"):
            self._ids.learn(top)
            for snap in top.flat():
                seen[snap.broker_order_id] = snap
        if any(self._ids.known(oid) is None and not _ours(s) for oid, s in seen.items()):
            self._refresh()  # legs whose parent ended: the parent names them
        out = []
        for snap in sorted(seen.values(), key=lambda s: s.created_ns):
            if snap.is_open:
                parent = self._ids.parent_of(snap.broker_order_id)
                out.append(broker_order(snap, self._ids.cid_for(snap, parent), parent))
        return out

    def positions(self) -> list[BrokerPosition]:
        """Every open position, sorted by symbol."""
        return self._client.positions()

    def account(self) -> Account:
        """Equity, cash and buying power as Alpaca reports them."""
        return self._client.account()

    def recent_fills(self, since_ns: int) -> list[Execution]:
        """Fills at or after ``since_ns``, oldest first, each under backstop's client id
        (a query: it does not count as reporting them)."""
        acts = [a for a in self._client.fills(since_ns - 1000) if a.ts_event >= since_ns]
        if any(self._ids.known(a.broker_order_id) is None for a in acts):
            self._refresh(min(a.ts_event for a in acts) - int(self._config.resync_lookback_s * 1e9))
        out = []
        ts_init = self._clock.now_ns()
        snaps: dict[str, OrderSnapshot] = {}
        for act in sorted(acts, key=lambda a: (a.ts_event, a.activity_id)):
            if act.broker_order_id not in snaps:
                snaps[act.broker_order_id] = self._client.by_id(act.broker_order_id)
            snap = snaps[act.broker_order_id]
            out.append(_execution(act, snap, self._cid(snap), ts_init))
        return out

    def bars(
        self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int | None = None
    ) -> pl.DataFrame:
        """Bars from Alpaca's market data in ``BAR_SCHEMA`` (``timeframe``: ``1Min``...)."""
        return self._client.bars(symbols, timeframe, start_ns, end_ns)

    def last_price(self, symbol: str) -> float:
        """The latest trade's price, else the latest bar's close (nan: none)."""
        price = self._client.latest_price(symbol)
        return float("nan") if price is None else price


RESYNC_MARGIN_NS = 1_000_000_000  # a re-sync reads back this far past the last one


def _primary(command: SubmitOrder) -> str:
    """The client id Alpaca files the request under (an OCO's: its take-profit's)."""
    if command.siblings:
        limits = [o for o in command if o.order_type == OrderType.LIMIT]
        return limits[0].client_order_id if limits else command.client_order_id
    return command.client_order_id


def _ours(snap: OrderSnapshot) -> bool:
    return parse_client_order_id(snap.client_order_id) is not None


def _execution(act: FillActivity, snap: OrderSnapshot, cid: str, ts_init: int) -> Execution:
    return Execution(
        client_order_id=cid,
        exec_id=act.exec_id,
        symbol=act.symbol,
        side=act.side,
        qty=act.qty,
        price=act.price,
        fee=0.0,
        leaves_qty=act.leaves_qty,
        ts_event=act.ts_event,
        ts_init=ts_init,
        broker_order_id=snap.broker_order_id,
    )
