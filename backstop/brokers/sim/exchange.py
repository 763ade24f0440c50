"""SimExchange: the simulated exchange behind Broker port v2.

It keeps the same order book the backtest loop uses and matches it with the same compiled
kernels, one bar at a time. It only matches: orders arrive as commands (entries carry no leg
levels; protective legs come as orders of their own, an OCO pair as the book's native sibling
link), and what happened leaves as ``OrderUpdate`` and ``Execution`` events with the core's
client ids, fees and slippage from the fill records. Reduce-only is the venue's own feature
(a reduce-only order never trades against a flat position and shrinks to a smaller one);
legs, remainder cancels and leg resizing are the core's bracket manager's commands.

With ``react`` (the driver's event handler), ``on_bar`` hands control back after every fill,
as a live broker's stream would: orders sent during the open print are live for the rest of
that bar and join the open pass, as the backtest loop places an entry's legs there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from backstop.brokers.sim.book import Book, _make_book, grow_book, new_book
from backstop.brokers.sim.matcher import cancel_order_nb, process_bar_nb
from backstop.brokers.sim.steps import (
    amend_order_nb,
    close_step_nb,
    intrabar_step_nb,
    open_step_nb,
    place_order_nb,
)
from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from backstop.domain.events import (
    Account,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    Execution,
    OrderUpdate,
    OrderUpdateKind,
)
from backstop.engine.checkpoint import rebuild, struct_arrays
from backstop.engine.core.params import SimParams
from backstop.engine.core.records import (
    N_FILLS,
    N_ORDERS,
    VENUE_ONLY,
    Instruments,
)
from backstop.errors import BackstopError, ConfigError, check

_ROOM = 64
NAN = math.nan
U = OrderUpdateKind
_UPDATE = {
    int(OrderStatus.ACCEPTED): U.ACCEPTED,
    int(OrderStatus.REJECTED): U.REJECTED,
    int(OrderStatus.CANCELED): U.CANCELED,
    int(OrderStatus.EXPIRED): U.EXPIRED,
}
React = Callable[[], object]


class SimExchange:
    """A ``BrokerPort`` whose matching engine is the compiled core's simulated exchange."""

    def __init__(
        self,
        symbols: tuple[str, ...],
        inst: Instruments,
        prm: SimParams,
        *,
        cash: float = 0.0,
    ) -> None:
        self.symbols = symbols
        self.index = {s: i for i, s in enumerate(symbols)}
        self.inst = inst
        self.prm = prm
        self.initial_cash = cash
        self.book: Book = new_book(len(symbols), prm.max_working, 256, 256)
        self.book.ctr[VENUE_ONLY] = 1
        self.cids: list[str] = []  # client id of every book order, by order id
        self.by_cid: dict[str, int] = {}
        self.marks = np.full(len(symbols), np.nan)
        self._status_seen = np.zeros(0, dtype=np.int8)
        self._types_seen = np.zeros(0, dtype=np.int8)
        self._fills_seen = 0
        self._done: dict[int, float] = {}  # quantity reported filled, by order id
        self._events: list[BrokerEvent] = []
        self._bar = -1  # the bar being matched (or the last one matched)
        self._ts = 0
        self._at_open = False

    # ---- Broker port v2: commands --------------------------------------------------------
    def submit(self, command: SubmitOrder) -> None:
        """Place the order and its OCO siblings (linked natively when they are a pair).

        The simulator has no native brackets: the core's bracket manager sends protective
        legs as their own orders when the entry fills, so a command with ``legs`` is refused
        (a ConfigError naming it), never half-placed. A client id it already has places
        nothing and is reported as it stands (the port's idempotency contract)."""
        check(
            not command.legs,
            ConfigError(
                command.client_order_id,
                "the simulator takes no native bracket legs: send them as their own orders "
                "when the entry fills (the core's bracket manager does)",
            ),
        )
        placed = []
        for cmd in command:
            if cmd.client_order_id in self.by_cid:
                self._report_again(self.by_cid[cmd.client_order_id])
                continue  # idempotent by client id: a resend places nothing
            if cmd.symbol not in self.index:
                raise BackstopError(f"SimExchange has no symbol {cmd.symbol!r}")
            self._room()
            live = self._bar + 1
            if self._at_open and self.prm.legs_live_on_entry_bar:
                live = self._bar  # sent during the open print: joins this bar's open pass
            k = int(
                place_order_nb(
                    self.book, cmd.trade_cycle_id, cmd.strategy, self.index[cmd.symbol],
                    int(cmd.side), int(cmd.order_type), int(cmd.tif), int(cmd.role),
                    float(cmd.qty), cmd.ts, live, _num(cmd.limit_price), _num(cmd.stop_price),
                    float(cmd.trail_percent or 0.0), bool(cmd.reduce_only),
                )
            )  # fmt: skip
            self.cids.append(cmd.client_order_id)
            self.by_cid[cmd.client_order_id] = k
            placed.append((k, cmd.oco_group))
        pair = [k for k, group in placed if group and group == command.oco_group]
        if len(pair) == 2:
            self.link_oco(self.cids[pair[0]], self.cids[pair[1]])
        self._collect(command.ts)

    def cancel(self, command: CancelOrder) -> None:
        k = self.by_cid.get(command.client_order_id)
        if k is None:
            return
        cancel_order_nb(self.book, k, command.ts, command.reasons)
        self._collect(command.ts)

    def amend(self, command: AmendOrder) -> None:
        k = self.by_cid.get(command.client_order_id)
        if k is None or int(self.book.orders["status"][k]) >= OrderStatus.FILLED:
            return
        amend_order_nb(
            self.book, k, _num(command.qty), _num(command.stop_price),
            _num(command.limit_price), command.reasons,
        )  # fmt: skip
        o = self.book.orders[k]
        self._events.append(
            OrderUpdate(
                U.REPLACED, command.client_order_id, command.ts, command.ts,
                reasons=command.reasons, qty=float(o["qty"]),
                stop_price=_opt(float(o["stop_px"])), limit_price=_opt(float(o["limit_px"])),
            )
        )  # fmt: skip
        self._collect(command.ts)

    # ---- Broker port v2: what the broker knows -----------------------------------------
    def account(self) -> Account:
        """Cash from the fills (fees paid), equity marked at the last bar of each symbol."""
        f = self.book.fills[: int(self.book.ctr[N_FILLS])]
        mult = self.inst.mult[f["sym"]]
        cash = self.initial_cash - float(np.sum(f["side"] * f["qty"] * f["price"] * mult))
        cash -= float(np.sum(f["fee"]))
        held = self.book.xpos * self.inst.mult
        value = float(np.sum(np.where(held != 0.0, held * self.marks, 0.0)))
        return Account(cash + value, cash, cash + value)

    def positions(self) -> list[BrokerPosition]:
        return [
            BrokerPosition(s, float(self.book.xpos[k]), NAN)
            for s, k in sorted(self.index.items())
            if self.book.xpos[k] != 0.0
        ]

    def open_orders(self) -> list[BrokerOrder]:
        n = int(self.book.ctr[N_ORDERS])
        status = self.book.orders["status"][:n]
        working = (status == OrderStatus.ACCEPTED) | (status == OrderStatus.PARTIALLY_FILLED)
        return [self._report(int(k)) for k in np.flatnonzero(working)]

    def order(self, client_order_id: str) -> BrokerOrder | None:
        k = self.by_cid.get(client_order_id)
        return None if k is None else self._report(k)

    def recent_fills(self, since_ns: int) -> list[Execution]:
        every = self._executions(0, int(self.book.ctr[N_FILLS]), {})
        return [e for e in every if e.ts_event >= since_ns]

    def last_price(self, symbol: str) -> float:
        """No quotes here: the simulator's only prices are the bars the driver marks."""
        del symbol
        return NAN

    def drain_events(self) -> list[BrokerEvent]:
        out, self._events = self._events, []
        return out

    # ---- set-up a replay or a test needs ---------------------------------------------------
    def seed_position(self, symbol: str, qty: float) -> None:
        """Hold ``qty`` of ``symbol`` from now on (a replay's recorded broker position)."""
        self.book.xpos[self.index[symbol]] = qty

    def link_oco(self, first: str, second: str) -> None:
        """Make two working orders (by client id) one native OCO pair."""
        a, b = self.by_cid[first], self.by_cid[second]
        self.book.orders["sibling"][a] = b
        self.book.orders["sibling"][b] = a

    # ---- the simulated market ----------------------------------------------------------
    def on_bar(
        self,
        i: int,
        ts: int,
        symbol: str,
        open_: float,
        high: float,
        low: float,
        volume: float,
        session: int,
        react: React | None = None,
    ) -> None:
        """Match the symbol's working orders against bar row ``i``; with ``react``, hand
        control back after every fill (see the module doc)."""
        s = self.index[symbol]
        self._bar, self._ts = i, ts
        if int(self.book.nwork[s]) == 0:
            self.marks[s] = open_
            return
        tick, lot, mult = (float(x[s]) for x in (self.inst.tick, self.inst.lot, self.inst.mult))
        book, prm = self.book, self.prm
        self._room()
        if react is None:
            process_bar_nb(book, prm, tick, lot, mult, s, i, ts, open_, high, low, volume, session)
            self._collect(ts)
            self.marks[s] = open_
            return
        self._at_open = True
        try:
            k = -1
            while True:
                self._room()
                k = int(
                    open_step_nb(book, prm, tick, lot, mult, s, i, ts, open_, volume, session, k)
                )
                self._collect(ts)
                react()
                if k < 0:
                    break
        finally:
            self._at_open = False
        k = -1
        while True:
            self._room()
            k = int(
                intrabar_step_nb(book, prm, tick, lot, mult, s, i, ts, open_, high, low, volume, k)
            )
            self._collect(ts)
            react()
            if k < 0:
                break
        stops = self._trailing(s)
        close_step_nb(book, tick, s, i, ts, high, low)
        for k, before in stops.items():
            level = float(book.orders["stop_px"][k])
            if level != before and int(book.orders["status"][k]) < OrderStatus.FILLED:
                self._events.append(OrderUpdate(U.REPLACED, self.cids[k], ts, ts, stop_price=level))
        self._collect(ts)
        react()
        self.marks[s] = open_

    def _trailing(self, s: int) -> dict[int, float]:
        """Levels of the symbol's working trailing stops (they ratchet at the bar's end)."""
        out = {}
        for j in range(int(self.book.nwork[s])):
            k = int(self.book.work[s, j])
            o = self.book.orders[k]
            if int(o["otype"]) == OrderType.TRAILING_STOP and int(o["status"]) < OrderStatus.FILLED:
                out[k] = float(o["stop_px"])
        return out

    # ---- durable state (a venue that lives in the runner's process) ----------------------
    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of the book, the client ids and what was already reported, for a Checkpoint.

        Taken when every event was drained: an event still queued would be lost."""
        if self._events:
            raise BackstopError(f"{len(self._events)} broker events not drained: no snapshot")
        arrays = struct_arrays(self.book)
        arrays["status_seen"] = self._status_seen.copy()
        arrays["types_seen"] = self._types_seen.copy()
        arrays["fills_seen"] = np.array([self._fills_seen, self._bar, self._ts], dtype=np.int64)
        arrays["client_ids"] = np.array(self.cids, dtype=np.str_)
        arrays["marks"] = self.marks.copy()
        return arrays

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Continue from a snapshot's book instead of the empty one it was built with."""
        self.book = rebuild(Book, _make_book, arrays)
        self._status_seen = np.array(arrays["status_seen"], dtype=np.int8)
        self._types_seen = np.array(arrays["types_seen"], dtype=np.int8)
        self._fills_seen, self._bar, self._ts = (int(x) for x in arrays["fills_seen"])
        self.cids = [str(c) for c in arrays["client_ids"]]
        self.by_cid = {c: k for k, c in enumerate(self.cids)}
        self.marks = np.array(arrays["marks"], dtype=np.float64)
        self._done = {}
        self._executions(0, self._fills_seen, self._done)
        self._events = []

    # ---- events out ------------------------------------------------------------------------
    def _room(self) -> None:
        grow_book(self.book, _ROOM, _ROOM)

    def _report_again(self, k: int) -> None:
        """Order ``k``'s story so far, each event stamped when it happened: accepted, its
        executions, and how it ended if it has."""
        o = self.book.orders[k]
        cid = self.cids[k]
        created = int(o["created_ts"])
        self._events.append(OrderUpdate(U.ACCEPTED, cid, created, created))
        n = int(self.book.ctr[N_FILLS])
        self._events += [e for e in self._executions(0, n, {}) if e.client_order_id == cid]
        ended = {OrderStatus.CANCELED: U.CANCELED, OrderStatus.EXPIRED: U.EXPIRED}
        kind = ended.get(OrderStatus(int(o["status"])))
        if kind is not None:
            done = int(o["done_ts"])
            self._events.append(OrderUpdate(kind, cid, done, done, reasons=int(o["reasons"])))

    def _executions(self, start: int, stop: int, done: dict[int, float]) -> list[Execution]:
        """Executions of fill records ``start:stop``; ``done`` holds each order's quantity
        filled before ``start`` and is moved on (``leaves_qty`` is what is left after each)."""
        out = []
        book = self.book
        for f in range(start, stop):
            r = book.fills[f]
            k = int(r["order"])
            done[k] = done.get(k, 0.0) + float(r["qty"])
            out.append(
                Execution(
                    self.cids[k], f"S{f}", self.symbols[int(r["sym"])], Side(int(r["side"])),
                    float(r["qty"]), float(r["price"]), float(r["fee"]),
                    max(float(book.orders["qty"][k]) - done[k], 0.0), int(r["ts"]), int(r["ts"]),
                    slippage=float(r["slippage"]),
                    alt_prices=_alts(r),
                )
            )  # fmt: skip
        return out

    def _collect(self, ts: int) -> None:
        """Turn what the kernels changed into events, in the order they happened.

        A step ends at its one fill (``steps.py``), so within a step the expiries came first
        (a DAY order expires when the open phase reaches it, before a later order fills),
        then the fill, then what the fill caused (a native OCO sibling cancelled, a
        reduce-only order with nothing left to reduce)."""
        book = self.book
        n = int(book.ctr[N_ORDERS])
        status = book.orders["status"][:n]
        seen = np.full(n, -1, dtype=np.int8)
        seen[: len(self._status_seen)] = self._status_seen[:n]
        before: list[BrokerEvent] = []
        after: list[BrokerEvent] = []
        for k in np.flatnonzero(status != seen):
            kind = _UPDATE.get(int(status[k]))
            if kind is None:
                continue  # filled / partially filled: the executions said so
            done = int(book.orders["done_ts"][k])
            at = done if done >= 0 and kind != U.ACCEPTED else ts
            update = OrderUpdate(kind, self.cids[k], at, at, reasons=int(book.orders["reasons"][k]))
            (before if kind == U.EXPIRED else after).append(update)
        n_fills = int(book.ctr[N_FILLS])
        self._events += before
        self._events.extend(self._executions(self._fills_seen, n_fills, self._done))
        self._events += after
        self._fills_seen = n_fills
        self._status_seen = status.copy()
        otype = book.orders["otype"][:n]
        known = min(len(self._types_seen), n)
        for k in np.flatnonzero(otype[:known] != self._types_seen[:known]):
            self._events.append(  # a stop-limit triggered beyond its limit rests as a limit
                OrderUpdate(
                    U.REPLACED, self.cids[k], ts, ts, order_type=OrderType(int(otype[k])),
                    limit_price=_opt(float(book.orders["limit_px"][k])),
                )
            )  # fmt: skip
        self._types_seen = otype.copy()

    def _report(self, k: int) -> BrokerOrder:
        o = self.book.orders[k]
        filled = float(o["filled"])
        return BrokerOrder(
            self.cids[k], str(k), self.symbols[int(o["sym"])], Side(int(o["side"])),
            float(o["qty"]), filled, OrderStatus(int(o["status"])), OrderType(int(o["otype"])),
            TimeInForce(int(o["tif"])), _opt(float(o["limit_px"])), _opt(float(o["stop_px"])),
            avg_fill_price=_opt(float(o["avg_fill"])) if filled > 0 else None,
        )  # fmt: skip


def _alts(r: np.void) -> tuple[float, float, float] | None:
    if not bool(r["ambiguous"]):
        return None
    return (
        float(r["alt_stop_first"]),
        float(r["alt_target_first"]),
        float(r["alt_open_proximity"]),
    )


def _num(value: float | None) -> float:
    return NAN if value is None else float(value)


def _opt(value: float) -> float | None:
    return None if value != value else value
