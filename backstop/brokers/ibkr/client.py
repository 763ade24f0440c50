"""I/O with a TWS / IB Gateway through ib_async's synchronous ``IB`` API.

Threading: ib_async is asyncio; its synchronous methods run the event loop of the calling
thread until their answer arrives. ``IBClient`` is used from one thread only (the
runner's): nothing runs in the background, the loop turns only inside a call of this
module (a request, ``pump``, ``wait``), so the gateway's messages are handled one at a
time in the order the socket delivered them, and the handlers below write them down in
that order as ``Note`` records (backstop's types, never ib_async's). Every wait is
bounded: ``request_timeout_s`` for requests (``IB.RequestTimeout``), ``connect_timeout_s``
for the handshake and start-up fetch.

Errors: a gateway that cannot be reached, a request that times out or a socket that is
down is ``BrokerUnavailable`` with a one-line reason.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import polars as pl
from ib_async import IB, Contract, Fill, Trade
from ib_async.objects import CommissionReport

from backstop.brokers.ibkr import parsing
from backstop.brokers.ibkr import parsing_market as market
from backstop.brokers.ibkr.codes import is_warning
from backstop.brokers.ibkr.config import IBKRConfig
from backstop.brokers.ibkr.parsing import FillSnap, OrderSnap
from backstop.brokers.ibkr.parsing_market import ContractSpec
from backstop.domain.commands import AmendOrder, SubmitOrder
from backstop.domain.events import Account, BrokerPosition
from backstop.engine.broker import BrokerUnavailable
from backstop.errors import BackstopError

log = logging.getLogger("backstop.ibkr")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StatusNote:
    """The gateway reported an order's status (``orderStatus``) or the order itself
    (``openOrder``, how a modify is acknowledged)."""

    order: OrderSnap


@dataclass(frozen=True, slots=True)
class FillNote:
    fill: FillSnap
    order_qty: float | None  # the order's total quantity (None: order unknown)


@dataclass(frozen=True, slots=True)
class CommissionNote:
    exec_id: str
    commission: float


@dataclass(frozen=True, slots=True)
class ErrorNote:
    """An ``error`` message: ``order`` is ours when its id names one of this session's
    orders (None otherwise)."""

    req_id: int
    code: int
    text: str
    order: OrderSnap | None


@dataclass(frozen=True, slots=True)
class SocketNote:
    """The API socket to the gateway closed."""


Note = StatusNote | FillNote | CommissionNote | ErrorNote | SocketNote


class IBClient:
    """ib_async's ``IB`` behind backstop's types (see the module doc)."""

    def __init__(self, config: IBKRConfig) -> None:
        self.config = config
        self.ib = IB()
        self.ib.RequestTimeout = config.request_timeout_s
        self.ib.client.MaxRequests = config.max_requests_per_s
        self.notes: list[Note] = []
        self.contracts: dict[str, Contract] = {}  # backstop symbol -> qualified contract
        self.specs: dict[str, ContractSpec] = {}
        self._names: dict[int, str] = {}  # IB contract id -> backstop symbol
        self._muted = False  # True while ib_async reports its own (local) state changes
        ib = self.ib
        ib.orderStatusEvent += self._on_status
        ib.openOrderEvent += self._on_open
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnect

    def __repr__(self) -> str:
        c = self.config
        return f"IBClient({c.host}:{c.port}, client id {c.client_id})"

    # ------------------------------------------------------------ connection

    def connect(self) -> None:
        """Connect and let ib_async fetch positions, open and completed orders, account
        values and executions (each bounded by ``connect_timeout_s``)."""
        c = self.config
        try:
            self.ib.connect(
                c.host,
                c.port,
                clientId=c.client_id,
                timeout=c.connect_timeout_s,
                account=c.account,
                raiseSyncErrors=True,
            )
        except (TimeoutError, OSError, ConnectionError) as err:
            self._drop()
            if isinstance(err, TimeoutError):
                reason = f"no answer within {c.connect_timeout_s:g} s"
            elif isinstance(err, ConnectionRefusedError):
                reason = "connection refused (is the API port open?)"
            elif err.args and isinstance(err.args[0], list):  # raiseSyncErrors: what timed out
                reason = "; ".join(str(a) for a in err.args[0])
            else:
                reason = (str(err).splitlines() or [type(err).__name__])[0]
            raise BrokerUnavailable(
                f"IB gateway {c.host}:{c.port} (client id {c.client_id}) not reachable: {reason}"
            ) from None

    def _drop(self) -> None:
        self._muted = True
        try:
            self.ib.disconnect()
        finally:
            self._muted = False

    def close(self) -> None:
        if self.ib.isConnected():
            self._drop()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    def pump(self) -> None:
        """Handle what the socket delivered so far (no waiting)."""
        if self.ib.isConnected():
            self.ib.sleep(0)

    def wait(self, seconds: float) -> None:
        """Handle messages for up to ``seconds`` (returns at the first update)."""
        if self.ib.isConnected():
            self.ib.waitOnUpdate(timeout=seconds)

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if not self.ib.isConnected():
            raise BrokerUnavailable(f"{what}: not connected to the IB gateway")
        try:
            return fn(*args)
        except TimeoutError:
            raise BrokerUnavailable(
                f"{what}: the IB gateway did not answer within {self.config.request_timeout_s:g} s"
            ) from None
        except (OSError, ConnectionError) as err:
            raise BrokerUnavailable(f"{what}: IB gateway connection failed: {err}") from None

    # ------------------------------------------------------------ contracts

    def contract_spec(self, symbol: str, is_future: bool) -> ContractSpec:
        """Look ``symbol`` up at IB (once) and remember its contract."""
        if symbol in self.specs:
            return self.specs[symbol]
        months = dict(self.config.contract_months)
        query = market.contract_for(symbol, is_future, months)
        details = self._call(f"contract {symbol}", self.ib.reqContractDetails, query)
        spec = market.contract_spec(symbol, details)
        contract = details[0].contract
        assert contract is not None
        self.contracts[symbol] = contract
        self.specs[symbol] = spec
        self._names[spec.con_id] = symbol
        return spec

    def name(self, contract: Contract) -> str:
        return self._names.get(contract.conId) or market.contract_name(contract)

    # ------------------------------------------------------------ orders

    def place(self, cmd: SubmitOrder, skip: frozenset[str] = frozenset()) -> list[int]:
        """Place ``cmd``'s IB orders (``parsing.request``) but those whose client id is in
        ``skip``; ids come from ib_async's counter, which follows ``nextValidId`` and every
        id the gateway reported. Returns the IB order ids placed."""
        contract = self.contracts[cmd.symbol]
        if not self.ib.isConnected():
            raise BrokerUnavailable(f"submit {cmd.client_order_id}: not connected to IB")
        first = self.ib.client.getReqId()
        orders = parsing.request(cmd, first, self.config.account)
        for _ in orders[1:]:
            self.ib.client.getReqId()  # reserve the ids the request uses
        placed = []
        for member, order in orders:
            if member.client_order_id in skip:
                continue
            self._call(f"submit {member.client_order_id}", self.ib.placeOrder, contract, order)
            placed.append(order.orderId)
        return placed

    def _trade(self, cid: str) -> Trade | None:
        """This session's trade for backstop's client id (the open one first)."""
        found = [t for t in self.ib.wrapper.trades.values() if t.order.orderRef == cid]
        found.sort(key=lambda t: (not t.isDone(), t.order.orderId))
        return found[-1] if found else None

    def cancel(self, cid: str) -> bool:
        """Ask IB to cancel the order ``cid`` (False: this session knows no working one)."""
        trade = self._trade(cid)
        if trade is None or trade.isDone():
            return False
        self._muted = True  # ib_async's local PendingCancel is not the gateway's word
        try:
            self._call(f"cancel {cid}", self.ib.cancelOrder, trade.order)
        finally:
            self._muted = False
        return True

    def amend(self, cid: str, cmd: AmendOrder) -> bool:
        """Re-place the order ``cid`` under its IB order id with the amend's fields (False:
        no working order)."""
        trade = self._trade(cid)
        if trade is None or trade.isDone():
            return False
        new = parsing.amended(trade.order, cmd)
        self._call(f"amend {cid}", self.ib.placeOrder, trade.contract, new)
        return True

    def orders(self) -> list[OrderSnap]:
        """Every order this session knows (open and completed), as ib_async holds them."""
        trades = list(self.ib.wrapper.trades.values())
        return [parsing.order_snap(t, self.name(t.contract)) for t in trades]

    def refresh_orders(self) -> list[OrderSnap]:
        """Re-read open and completed orders from the gateway, then ``orders()``."""
        self._call("open orders", self.ib.reqOpenOrders)
        self._call("completed orders", self.ib.reqCompletedOrders, False)
        return self.orders()

    def executions(self, commission_wait_s: float) -> list[FillNote]:
        """Every execution the gateway reports now (``reqExecutions``), each with its
        commission when the report comes within ``commission_wait_s``."""
        answer: list[Fill] = self._call("executions", self.ib.reqExecutions)
        # ib_async keeps one Fill per execId (the first it heard); commission reports
        # update that one, so the answer is read through it
        book = self.ib.wrapper.fills
        fills = [book.get(f.execution.execId, f) for f in answer]
        deadline = time.monotonic() + commission_wait_s
        while any(not _has_fee(f) for f in fills) and time.monotonic() < deadline:
            self.wait(min(0.05, max(deadline - time.monotonic(), 0.001)))
        return [self._fill_note(f) for f in fills]

    def session_fills(self) -> list[FillNote]:
        """The executions ib_async holds for this session (live and re-read), oldest
        first."""
        fills = sorted(self.ib.fills(), key=lambda f: (f.execution.time, f.execution.execId))
        return [self._fill_note(f) for f in fills]

    def _fill_note(self, fill: Fill, trade: Trade | None = None) -> FillNote:
        trade = trade or self.ib.wrapper.permId2Trade.get(fill.execution.permId)
        qty = float(trade.order.totalQuantity) if trade is not None else None
        return FillNote(parsing.fill_snap(fill, self.name(fill.contract)), qty)

    def barrier(self) -> None:
        """One round trip (``reqCurrentTime``): every message the gateway sent before its
        answer is handled when it returns."""
        self._call("current time", self.ib.reqCurrentTime)

    def current_time_ns(self) -> int:
        """The gateway's clock (``reqCurrentTime``, whole seconds) in ns UTC."""
        stamp = self._call("current time", self.ib.reqCurrentTime)
        return int(stamp.timestamp()) * 1_000_000_000

    def managed_accounts(self) -> list[str]:
        """The account ids the gateway's login manages (sent at connect)."""
        return list(self.ib.managedAccounts())

    # ------------------------------------------------------------ account

    def positions(self) -> list[BrokerPosition]:
        """Every non-zero position of the account, as the gateway reports it now."""
        # the request is a round trip; its answer may repeat updates the gateway pushed while
        # it was out, so the positions are read from ib_async's book (one per contract)
        self._call("positions", self.ib.reqPositions)
        out = []
        for pos in self.ib.positions(self.config.account):
            if self.config.account and pos.account != self.config.account:
                continue
            if pos.position == 0:
                continue
            mult = float(pos.contract.multiplier) if pos.contract.multiplier else 1.0
            out.append(market.position(self.name(pos.contract), pos.position, pos.avgCost, mult))
        return sorted(out, key=lambda p: p.symbol)

    def account(self) -> Account:
        self.pump()
        return market.account_values(list(self.ib.accountValues()), self.config.account)

    def bars(
        self, symbols: list[str], timeframe: str, start_ns: int, end_ns: int | None
    ) -> pl.DataFrame:
        """Historical bars of ``symbols`` (contracts looked up before) at or after
        ``start_ns``, up to ``end_ns`` (None: the gateway's now, looking back
        ``history_days``)."""
        size = market.bar_size(timeframe)
        if end_ns is None:
            end, days = "", self.config.history_days
        else:
            end = datetime.fromtimestamp(end_ns // 1_000_000_000, UTC).strftime("%Y%m%d-%H:%M:%S")
            days = max(math.ceil((end_ns - start_ns) / 86_400e9), 1)
        got = {}
        for symbol in symbols:
            heard = len(self.notes)
            got[symbol] = self._call(
                f"bars {symbol}", self.ib.reqHistoricalData, self.contracts[symbol], end,
                f"{days} D", size, "TRADES", False, 2,
            )  # fmt: skip
            refused = [
                n
                for n in self.notes[heard:]
                if isinstance(n, ErrorNote) and n.order is None and not is_warning(n.code)
            ]
            if not got[symbol] and refused:  # IB said why there are none: never "no bars"
                raise BackstopError(
                    f"bars {symbol} {timeframe}: IB refused the request "
                    f"(error {refused[-1].code}: {refused[-1].text})"
                )
        frame = market.bars_frame(got)
        return frame.filter(pl.col("ts") >= start_ns)

    # ------------------------------------------------------------ handlers

    def _on_status(self, trade: Trade) -> None:
        if self._muted:
            return
        if trade.log and trade.log[-1].errorCode:
            return  # ib_async's own reaction to an error message: the ErrorNote says it
        self.notes.append(StatusNote(parsing.order_snap(trade, self.name(trade.contract))))

    def _on_open(self, trade: Trade) -> None:
        if not self._muted:
            snap = parsing.order_snap(trade, self.name(trade.contract))
            self.notes.append(StatusNote(snap))

    def _on_exec(self, trade: Trade, fill: Fill) -> None:
        self.notes.append(self._fill_note(fill, trade))

    def _on_commission(self, trade: Trade, fill: Fill, report: CommissionReport) -> None:
        commission = parsing._num(report.commission)
        self.notes.append(CommissionNote(report.execId, commission or 0.0))

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        trade = self.ib.wrapper.trades.get((self.config.client_id, req_id))
        snap = None if trade is None else parsing.order_snap(trade, self.name(trade.contract))
        self.notes.append(ErrorNote(req_id, code, text, snap))

    def _on_disconnect(self) -> None:
        if not self._muted:
            self.notes.append(SocketNote())


def _has_fee(fill: Fill) -> bool:
    return fill.commissionReport.execId == fill.execution.execId
