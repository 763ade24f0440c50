"""``IBKRBroker``: backstop's Broker port v2 on Interactive Brokers, through ib_async.

It translates and holds no trading logic: the core decides legs, OCO cancels and resizes.

- **Identity.** backstop's client id travels in ``orderRef``; orders are recognised by it
  only (IB order ids are per session, skip, and are reissued after a gateway restart).
  Cancels and amends look the order's current IB id up by ``orderRef`` at the time.
- **Idempotency.** A submit whose client id the gateway already holds (this session's
  open and completed orders, re-read on every connect) places nothing and reports the
  order as it stands (accepted, its executions, its end). A bracket is placed whole or
  not at all; an OCO pair places only the members the gateway lacks.
- **Brackets and OCO.** ``legs``: a native bracket (parent and take-profit
  ``transmit=False``, the stop ``transmit=True``, children by ``parentId``). ``siblings``:
  one OCA group, ``ocaType`` 3. An amend re-places the same IB order id with new fields,
  reported as REPLACED when the gateway echoes the new order.
- **Contracts.** Futures on CME, stocks on SMART; the tick (``minTick``) and multiplier
  IB reports are checked against backstop's instrument registry (or the given
  overrides): a mismatch is a ``ConfigError`` naming the symbol, never a guess.
- **Commands return once the gateway has them**: a submit, cancel or amend ends with one
  round trip, so a market that moves right after (the fake's ``advance``) finds the order
  there, and what the gateway answered at once is heard.
- **Events** (``drain_events``) come in the order the gateway sent them (see ``client``
  for the threading), error codes as ``codes`` says, each once (``translate``); a fill
  waits up to ``commission_wait_s`` for its commission. After every (re)connect and every
  1101/1102 the adapter re-reads open orders, completed orders and executions and reports
  what it had not (fills during an outage are booked once, by execId).
- **Connection.** ``connected`` says whether the gateway is reachable now;
  ``connection_events()`` hands the runner CONNECTION_LOST / CONNECTION_RESTORED
  controls (socket drops, 1100, 1101/1102), each transition once. A dropped socket is
  reconnected from ``drain_events`` at most every ``reconnect_every_s``; commands while
  it is down raise ``BrokerUnavailable`` (nothing was placed; sending again is safe).

Status times: IB's ``orderStatus`` carries no time, so status events are stamped with
the adapter's ``clock`` (the runner's); executions carry the gateway's execution time.
``last_price`` is the latest one-minute bar's close: the adapter subscribes to no market
data.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from types import TracebackType

import polars as pl

from backstop.brokers.ibkr.client import IBClient, SocketNote
from backstop.brokers.ibkr.config import IBKRConfig
from backstop.brokers.ibkr.notes import read, waiting
from backstop.brokers.ibkr.parsing import OrderSnap, broker_order, execution
from backstop.brokers.ibkr.parsing_market import ContractSpec, check_spec
from backstop.brokers.ibkr.translate import Translator
from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import ControlAction
from backstop.domain.events import (
    Account,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    Execution,
)
from backstop.domain.instruments import Instrument, lookup
from backstop.engine.broker import BrokerUnavailable
from backstop.engine.clock import Clock, LiveClock
from backstop.errors import BackstopError

log = logging.getLogger("backstop.ibkr")


class IBKRBroker:
    """The Broker port v2 on IB. ``start()`` (or ``with``) connects and checks the
    contracts of ``symbols``; ``close()`` disconnects."""

    def __init__(
        self,
        config: IBKRConfig,
        *,
        clock: Clock | None = None,
        instruments: Mapping[str, Instrument] | None = None,
        symbols: Iterable[str] = (),
    ) -> None:
        self._config = config
        self._clock = LiveClock() if clock is None else clock
        self._instruments = dict(instruments) if instruments else None
        self._symbols = tuple(symbols)
        self._client = IBClient(config)
        self._tr = Translator()
        self._pending: list[BrokerEvent] = []
        self._controls: list[ControlAction] = []
        self._up = False  # the gateway (and IB's servers behind it) reachable
        self._needs_resync = False
        self._last_try = -math.inf

    def __repr__(self) -> str:
        return f"IBKRBroker({self._client!r})"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> IBKRBroker:
        self._client.connect()
        self._up = True
        self._needs_resync = True
        for symbol in self._symbols:
            self.contract(symbol)
        return self

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IBKRBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """Whether the gateway is connected and reports IB's servers reachable."""
        return self._up and self._client.connected

    def connection_events(self) -> list[ControlAction]:
        """CONNECTION_LOST / CONNECTION_RESTORED since the last call, in order."""
        out, self._controls = self._controls, []
        return out

    def _state(self, up: bool) -> None:
        if up != self._up:
            self._up = up
            self._controls.append(
                ControlAction.CONNECTION_RESTORED if up else ControlAction.CONNECTION_LOST
            )

    def contract(self, symbol: str) -> ContractSpec:
        """IB's contract for ``symbol``, its tick and multiplier checked against backstop's
        instrument (a mismatch is a ``ConfigError`` naming the symbol)."""
        inst = lookup(symbol, self._instruments)
        spec = self._client.contract_spec(symbol, inst.is_future)
        check_spec(spec, inst)
        return spec

    # ------------------------------------------------------------ commands

    def _ready(self, what: str) -> None:
        if not self._client.connected:
            self._reconnect(force=True)
        if not self._client.connected:
            raise BrokerUnavailable(f"{what}: not connected to the IB gateway; nothing sent")

    def submit(self, command: SubmitOrder) -> None:
        """Place ``command`` (legs as a native bracket, siblings as an OCA group), or
        nothing when the gateway already holds its client id (see the module doc)."""
        self._ready(f"submit {command.client_order_id}")
        self.contract(command.symbol)
        self._collect()  # what the gateway said before is reported before the answer
        known = {s.client_order_id: s for s in self._client.orders() if s.client_order_id}
        members = [*command, *command.legs]
        primary = known.get(command.client_order_id)
        if primary is not None and (
            primary.symbol != command.symbol or primary.side != command.side
        ):
            raise BackstopError(
                f"submit {command.client_order_id}: IB's order with this client id is a "
                f"{primary.side.name} of {primary.symbol}, not this {command.side.name} of "
                f"{command.symbol}"
            )
        have = [known[m.client_order_id] for m in members if m.client_order_id in known]
        if have:
            self._report(have)
        if primary is not None and command.legs:
            return  # the bracket reached the gateway: nothing is placed twice
        skip = frozenset(s.client_order_id for s in have)
        if len(skip) < len(members):
            self._client.place(command, skip)
            self._client.barrier()

    def cancel(self, command: CancelOrder) -> None:
        """Ask IB to cancel a working order; one already ended is no error (its end is
        reported if it was not yet)."""
        cid = command.client_order_id
        self._ready(f"cancel {cid}")
        self._collect()
        if self._client.cancel(cid):
            self._client.barrier()
            return
        snap = self._find(cid)
        if snap is None:
            raise BackstopError(f"cancel {cid}: IB has no such order")
        self._report([snap])

    def amend(self, command: AmendOrder) -> None:
        """Re-place a working order under its IB order id with the new quantity or
        levels (REPLACED when the gateway echoes it); an ended order is left as it is."""
        cid = command.client_order_id
        self._ready(f"amend {cid}")
        self._collect()
        snap = self._find(cid)
        if snap is None:
            raise BackstopError(f"amend {cid}: IB has no such order")
        if snap.is_done:
            self._report([snap])
            return
        qty = command.qty if command.qty is not None else snap.qty
        self._tr.expect_amend(cid, qty, command.stop_price, command.limit_price)
        self._client.amend(cid, command)
        self._client.barrier()

    # ------------------------------------------------------------ events

    def drain_events(self) -> list[BrokerEvent]:
        """Events since the last call in the order the gateway sent them, then what a
        re-read finds missing after a (re)connect or a 1101/1102. A re-read the gateway
        does not answer in time is tried again at the next call (logged), never skipped."""
        self._reconnect()
        self._collect()
        if self._needs_resync and self._client.connected:
            try:
                self._pending += self.resync()
                self._needs_resync = False
            except BrokerUnavailable as err:
                log.warning("IB re-sync postponed: %s", err)
        out, self._pending = self._pending, []
        return out

    def refresh(self) -> None:
        """One round trip to the gateway, then collect: everything the gateway sent
        before now comes with the next ``drain_events`` (a runner whose market moved
        calls it before deciding, so what a bar filled is never late). It is also the
        heartbeat: a gateway that does not answer within ``request_timeout_s`` (a dead
        socket nobody announced) is dropped, reported lost, and reconnected later."""
        self._reconnect()
        if self._client.connected:
            try:
                self._client.barrier()
            except BrokerUnavailable as err:
                log.warning("%s: dropping the connection to reconnect", err)
                self._client.close()
                self._state(False)
                self._needs_resync = True
        self._collect()

    def resync(self) -> list[BrokerEvent]:
        """Re-read open and completed orders and executions; the events not reported yet
        (accepted, then fills in time order, then ends)."""
        snaps = [s for s in self._client.refresh_orders() if s.client_order_id]
        fills = self._client.executions(self._config.commission_wait_s)
        now = self._clock.now_ns()
        out: list[BrokerEvent] = []
        for snap in snaps:
            if not snap.is_done or snap.status == "Filled":
                out += self._tr.status(snap, now, now)
        for note in sorted(fills, key=lambda n: (n.fill.ts_ns, n.fill.exec_id)):
            out += self._tr.fill(note, now)
        for snap in snaps:
            if snap.is_done:
                out += self._tr.status(snap, now, now)
        return out

    def _collect(self) -> None:
        """Translate the client's notes into pending events, fills with their commission
        (waiting up to ``commission_wait_s`` for reports not yet in)."""
        client = self._client
        client.pump()
        deadline = time.monotonic() + self._config.commission_wait_s
        while client.connected and waiting(client.notes) and time.monotonic() < deadline:
            client.wait(min(0.05, max(deadline - time.monotonic(), 0.001)))
        notes, client.notes = client.notes, []
        reading = read(self._tr, notes, self._clock.now_ns())
        self._pending += reading.events
        for up in reading.up:
            self._state(up)
        self._needs_resync = self._needs_resync or reading.resync

    def _reconnect(self, force: bool = False) -> None:
        """Reconnect a dropped socket (at most every ``reconnect_every_s`` unless
        ``force``); a success restores the connection and asks for a re-sync."""
        if self._client.connected:
            return
        now = time.monotonic()
        if not force and now - self._last_try < self._config.reconnect_every_s:
            return
        self._last_try = now
        self._collect_socket_notes()
        try:
            self._client.connect()
        except BrokerUnavailable as err:
            log.warning("%s", err)
            self._state(False)
            return
        self._state(True)
        self._needs_resync = True

    def _collect_socket_notes(self) -> None:
        notes = self._client.notes
        if any(isinstance(n, SocketNote) for n in notes):
            self._collect()

    def _report(self, snaps: list[OrderSnap]) -> None:
        """Report how these orders stand (accepted, this session's fills, their end)."""
        now = self._clock.now_ns()
        for snap in snaps:
            if not snap.is_done or snap.status == "Filled":
                self._pending += self._tr.status(snap, now, now)
        cids = {s.client_order_id for s in snaps}
        for note in self._client.session_fills():
            if note.fill.client_order_id in cids:
                self._pending += self._tr.fill(note, now)
        for snap in snaps:
            if snap.is_done:
                self._pending += self._tr.status(snap, now, now)

    # ------------------------------------------------------------ snapshots

    def _find(self, cid: str) -> OrderSnap | None:
        """The order with client id ``cid`` (this session's memory, then a re-read)."""
        for snaps in (self._client.orders, self._client.refresh_orders):
            found = [s for s in snaps() if s.client_order_id == cid]
            if found:
                found.sort(key=lambda s: (not s.is_done, s.perm_id))
                return found[-1]
        return None

    def order(self, client_order_id: str) -> BrokerOrder | None:
        """The order standing for this client id, in any state (None: IB has none)."""
        snap = self._find(client_order_id)
        if snap is None:
            return None
        return broker_order(snap, client_order_id, self._parent_cid(snap, self._client.orders()))

    def open_orders(self) -> list[BrokerOrder]:
        """Every working order (bracket children held for their parent included), oldest
        first; an order without ``orderRef`` is named ``ib-<permId>`` (not ours)."""
        snaps = self._client.refresh_orders()
        out = []
        for snap in sorted(snaps, key=lambda s: (s.perm_id, s.ib_order_id)):
            if snap.is_done:
                continue
            cid = snap.client_order_id or f"ib-{snap.perm_id}"
            out.append(broker_order(snap, cid, self._parent_cid(snap, snaps)))
        return out

    @staticmethod
    def _parent_cid(snap: OrderSnap, snaps: list[OrderSnap]) -> str | None:
        if not snap.parent_ib_id:
            return None
        for other in snaps:
            if other.ib_order_id == snap.parent_ib_id and other.client_order_id:
                return other.client_order_id
        return None

    def positions(self) -> list[BrokerPosition]:
        """Every open position, sorted by symbol (``avgCost`` / multiplier per unit)."""
        self._ready("positions")
        return self._client.positions()

    def account(self) -> Account:
        """Equity (NetLiquidation), cash (TotalCashValue) and buying power."""
        self._ready("account")
        return self._client.account()

    def recent_fills(self, since_ns: int) -> list[Execution]:
        """Executions at or after ``since_ns``, oldest first, under their ``orderRef`` (a
        query: it does not count as reporting them)."""
        self._ready("executions")
        notes = self._client.executions(self._config.commission_wait_s)
        now = self._clock.now_ns()
        out = []
        for note in sorted(notes, key=lambda n: (n.fill.ts_ns, n.fill.exec_id)):
            f = note.fill
            if f.ts_ns >= since_ns:
                cid = f.client_order_id or f"ib-{f.perm_id}"
                out.append(execution(f, cid, note.order_qty, now))
        return out

    def bars(
        self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int | None = None
    ) -> pl.DataFrame:
        """Bars from IB's historical data (TRADES, all hours) in ``BAR_SCHEMA``, at or
        after ``start_ns`` (the live bar feed's source)."""
        self._ready("bars")
        for symbol in symbols:
            self.contract(symbol)
        return self._client.bars(symbols, timeframe, start_ns, end_ns)

    def last_price(self, symbol: str) -> float:
        """The close of the latest one-minute TRADES bar IB has for ``symbol`` (the adapter
        subscribes to no live market data); nan when there is none or the gateway is down
        (the sizer's last resort: it then says it had no price)."""
        try:
            frame = self.bars([symbol], "1Min", 0)
        except BrokerUnavailable as err:
            log.warning("last price of %s: %s", symbol, err)
            return math.nan
        return float(frame.get_column("close")[-1]) if frame.height else math.nan
