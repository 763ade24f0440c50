"""SimExchange: the simulated exchange behind the Broker protocol.

It keeps the same book the backtest loop uses and matches it with the same compiled kernels,
one bar at a time; fills and status changes come out as Broker events. The event driver (and,
later, replay) uses it exactly as it would use a live adapter.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backstop.domain.enums import OrderRole, OrderStatus, Side
from backstop.engine.broker import (
    BrokerEvent,
    EntryRequest,
    ExitRequest,
    FillEvent,
    OpenOrder,
    OrderStatusEvent,
)
from backstop.engine.checkpoint import rebuild, struct_arrays
from backstop.engine.core.decide import submit_entry_nb, submit_exit_nb
from backstop.engine.core.exchange import amend_stop_nb, cancel_order_nb, process_bar_nb
from backstop.engine.core.params import SimParams
from backstop.engine.core.records import (
    EVENT_DTYPE,
    N_FILLS,
    N_ORDERS,
    Book,
    Instruments,
    _make_book,
    grow_book,
    new_book,
)
from backstop.errors import BackstopError

_ROOM = 64


class SimExchange:
    """A Broker whose matching engine is the compiled core's simulated exchange."""

    def __init__(self, symbols: tuple[str, ...], inst: Instruments, prm: SimParams) -> None:
        self.symbols = symbols
        self.index = {s: i for i, s in enumerate(symbols)}
        self.inst = inst
        self.prm = prm
        self.book: Book = new_book(len(symbols), prm.max_working, 256, 256)
        self._status_seen = np.zeros(0, dtype=np.int8)
        self._fills_seen = 0
        self._events: list[BrokerEvent] = []

    # ---- Broker protocol ---------------------------------------------------------------
    def submit_entry(self, request: EntryRequest) -> int:
        self._room()
        ev = np.zeros(1, dtype=EVENT_DTYPE)[0]
        ev["seq"] = request.trade_cycle
        ev["strategy"] = request.strategy
        sym = self.index[request.symbol]
        ev["sym"] = sym
        ev["side"] = int(request.side)
        ev["otype"] = int(request.order_type)
        ev["tif"] = request.tif
        ev["ts"] = request.ts
        ev["bar"] = request.bar
        ev["limit_px"] = request.limit_price
        ev["entry_stop_px"] = request.entry_stop_price
        ev["stop_px"] = request.stop_price
        ev["target_px"] = request.target_price
        ev["stop_pct"] = request.stop_pct
        ev["target_pct"] = request.target_pct
        ev["trail_pct"] = request.trail_pct
        ev["scale_in_pct"] = request.scale_in_pct
        k = int(
            submit_entry_nb(
                self.book,
                float(self.inst.tick[sym]),
                float(self.inst.lot[sym]),
                ev,
                request.qty,
                request.price,
                request.target_price,
                request.target_pct,
            )
        )
        self._collect(request.ts)
        return k

    def submit_exit(self, request: ExitRequest) -> int:
        self._room()
        ev = np.zeros(1, dtype=EVENT_DTYPE)[0]
        ev["seq"] = request.trade_cycle
        ev["strategy"] = request.strategy
        ev["sym"] = self.index[request.symbol]
        ev["ts"] = request.ts
        ev["bar"] = request.bar
        k = int(
            submit_exit_nb(
                self.book,
                ev,
                int(request.side),
                request.qty,
                int(request.role),
                request.cancel_reasons,
            )
        )
        self._collect(request.ts)
        return k

    def cancel(self, order_id: int, ts: int, reasons: int = 0) -> None:
        cancel_order_nb(self.book, order_id, ts, reasons)
        self._collect(ts)

    def amend_stop(self, order_id: int, stop_price: float, ts: int, reasons: int = 0) -> None:
        del ts  # an amendment changes no status: nothing to report
        amend_stop_nb(self.book, order_id, stop_price, reasons)

    def position(self, symbol: str) -> float:
        return float(self.book.xpos[self.index[symbol]])

    def last_price(self, symbol: str) -> float:
        """No quotes here: the simulator's only prices are the bars the driver marks."""
        del symbol
        return float("nan")

    def open_orders(self, symbol: str) -> list[OpenOrder]:
        s = self.index[symbol]
        out = []
        for j in range(int(self.book.nwork[s])):
            o = self.book.orders[int(self.book.work[s, j])]
            status = OrderStatus(int(o["status"]))
            if status.value >= OrderStatus.FILLED:
                continue
            out.append(
                OpenOrder(
                    order_id=int(o["id"]),
                    symbol=symbol,
                    side=Side(int(o["side"])),
                    role=OrderRole(int(o["role"])),
                    status=status,
                    qty=float(o["qty"]),
                    filled_qty=float(o["filled"]),
                    stop_price=float(o["stop_px"]),
                )
            )
        return out

    def drain_events(self) -> list[BrokerEvent]:
        out, self._events = self._events, []
        return out

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
    ) -> None:
        """Let the market move: match the symbol's working orders against this bar."""
        s = self.index[symbol]
        if int(self.book.nwork[s]) == 0:
            return
        self._room()
        process_bar_nb(
            self.book,
            self.prm,
            float(self.inst.tick[s]),
            float(self.inst.lot[s]),
            float(self.inst.mult[s]),
            s,
            i,
            ts,
            open_,
            high,
            low,
            volume,
            session,
        )
        self._collect(ts)

    # ---- durable state (a venue that lives in the runner's process) ----------------------
    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of the book and of what was already reported, for a Checkpoint.

        Taken when every event was drained: an event still queued would be lost."""
        if self._events:
            raise BackstopError(f"{len(self._events)} broker events not drained: no snapshot")
        arrays = struct_arrays(self.book)
        arrays["status_seen"] = self._status_seen.copy()
        arrays["fills_seen"] = np.array([self._fills_seen], dtype=np.int64)
        return arrays

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Continue from a snapshot's book instead of the empty one it was built with."""
        self.book = rebuild(Book, _make_book, arrays)
        self._status_seen = np.array(arrays["status_seen"], dtype=np.int8)
        self._fills_seen = int(arrays["fills_seen"][0])
        self._events = []

    def _room(self) -> None:
        grow_book(self.book, _ROOM, _ROOM)

    def _collect(self, ts: int) -> None:
        """Turn what the kernels changed into events: new fills, then status changes."""
        book = self.book
        n_fills = int(book.ctr[N_FILLS])
        for f in range(self._fills_seen, n_fills):
            r = book.fills[f]
            self._events.append(
                FillEvent(
                    ts_event=int(r["ts"]),
                    ts_init=ts,
                    order_id=int(r["order"]),
                    symbol=self.symbols[int(r["sym"])],
                    side=Side(int(r["side"])),
                    qty=float(r["qty"]),
                    price=float(r["price"]),
                    fee=float(r["fee"]),
                    record=r.copy(),
                )
            )
        self._fills_seen = n_fills
        n = int(book.ctr[N_ORDERS])
        status = book.orders["status"][:n]
        seen = np.full(n, -1, dtype=np.int8)
        seen[: len(self._status_seen)] = self._status_seen[:n]
        for k in np.flatnonzero(status != seen):
            self._events.append(
                OrderStatusEvent(
                    ts_event=ts,
                    ts_init=ts,
                    order_id=int(k),
                    status=OrderStatus(int(status[k])),
                    reasons=int(book.orders["reasons"][k]),
                )
            )
        self._status_seen = status.copy()
