"""The fake market: order book, positions and cash, matched bar by bar on the tape. No I/O.

``advance()`` moves the clock to the next timestamp of the tape and matches every working
order of each symbol against its bar, in this order (the backtest exchange's, see
``brokers/sim/matcher.py``):

1. DAY orders whose first live bar was on an earlier New York day expire.
2. Open phase: orders that fill at the open print fill there, in submission order. An entry
   filled at the open activates its held legs at once, live on this same bar.
3. Intrabar phase: orders whose level lies inside the bar fill at their level. When both
   exits of an OCO pair are touched, the stop fills first; the sibling is cancelled at the
   fill's timestamp. Legs of an entry filled intrabar are live from the next bar.
4. Trailing stops ratchet with the finished bar; IOC remainders are cancelled.

An order fills at most once per bar (the partial-fill fault carries the rest to later bars).
Every change is an ``Event`` appended to ``events`` in the order it happened; the stream
delivers them in that order. The market is not thread-safe: the server holds one lock
around every call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from backstop.errors import ConfigError, check
from backstop.testing.fake_alpaca import matching
from backstop.testing.fake_alpaca.faults import Faults
from backstop.testing.fake_alpaca.orders import FakeOrder, fake_uuid
from backstop.testing.fake_alpaca.tape import Bar, Tape


@dataclass(slots=True)
class Position:
    """Signed quantity and average entry price of one symbol."""

    qty: float = 0.0
    avg: float = 0.0


@dataclass(frozen=True, slots=True)
class Event:
    """One trade update: ``order`` is a snapshot of the order right after the change."""

    seq: int
    event: str
    order: FakeOrder
    ts: int
    price: float | None = None
    qty: float | None = None
    position_qty: float | None = None
    execution_id: str | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, as the account activities endpoint reports it."""

    id: str
    ts: int
    order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    cum_qty: float
    leaves_qty: float
    order_status: str


def snapshot(order: FakeOrder, **changes: Any) -> FakeOrder:
    """A copy of ``order`` that later changes do not touch (for events and responses)."""
    return dataclasses.replace(order, legs=list(order.legs), **changes)


class Market:
    """State of the fake account and exchange; see the module doc for the matching order."""

    def __init__(
        self,
        tape: Tape,
        *,
        cash: float = 100_000.0,
        start: int = 1,
        multiplier: float = 2.0,
        tick_check: bool = False,
        faults: Faults | None = None,
    ) -> None:
        check(
            1 <= start <= len(tape),
            ConfigError(
                "start", f"must be within 1..{len(tape)}, the tape's timestamps (got {start})"
            ),
        )
        self.tape = tape
        self.index = start - 1  # tape index of the latest delivered bar: the clock
        self.cash = float(cash)
        self.initial_cash = float(cash)
        self.last_equity = float(cash)
        self.multiplier = float(multiplier)
        self.tick_check = tick_check  # refuse sub-penny prices, as Alpaca does
        self.faults = faults if faults is not None else Faults()
        self.orders: dict[str, FakeOrder] = {}
        self.by_client: dict[str, FakeOrder] = {}
        self.positions: dict[str, Position] = {}
        self.events: list[Event] = []
        self.fills: list[Fill] = []
        self._open: dict[str, dict[str, FakeOrder]] = {}  # per symbol, in submission order
        self._n_orders = 0
        self._n_exec = 0

    # ---- clock and prices -------------------------------------------------------------

    @property
    def now(self) -> int:
        """The clock: the timestamp (ns UTC) of the latest bar the tape has delivered."""
        return int(self.tape.times[self.index])

    def price(self, symbol: str) -> float:
        """The last close of ``symbol`` (the mark for positions and market orders)."""
        px = self.tape.last_close(symbol, self.index)
        return float(px) if px is not None else 0.0

    def equity(self) -> float:
        """Cash plus the market value of every position at the last closes."""
        return self.cash + sum(p.qty * self.price(s) for s, p in self.positions.items())

    def buying_power(self) -> float:
        """Margin buying power: multiplier x equity less the gross market value held."""
        gross = sum(abs(p.qty) * self.price(s) for s, p in self.positions.items())
        return max(0.0, self.multiplier * self.equity() - gross)

    # ---- bookkeeping helpers ------------------------------------------------------------

    def next_order_id(self) -> tuple[str, int]:
        """A fresh deterministic order id and its sequence number."""
        self._n_orders += 1
        return fake_uuid("order", self._n_orders), self._n_orders

    def add(self, order: FakeOrder) -> None:
        """Register a new order (by id, by client id, and among its symbol's open orders)."""
        self.orders[order.id] = order
        self.by_client[order.client_order_id] = order
        self._open.setdefault(order.symbol, {})[order.id] = order

    def open_orders(self, symbol: str) -> list[FakeOrder]:
        """``symbol``'s orders that are still open, in submission order (prunes the rest)."""
        book = self._open.get(symbol, {})
        for oid in [k for k, o in book.items() if not o.is_open]:
            del book[oid]
        return list(book.values())

    def emit(self, kind: str, order: FakeOrder, **fields: Any) -> None:
        """Append a trade update for ``order`` at the current clock (or ``fields['ts']``)."""
        ts = fields.pop("ts", self.now)
        self.events.append(Event(len(self.events) + 1, kind, snapshot(order), ts, **fields))

    def held_for_orders(self, symbol: str, side: str) -> tuple[float, list[str]]:
        """Quantity working ``side`` orders of ``symbol`` hold (an OCO pair counts once)."""
        groups: dict[str, float] = {}
        working = self.open_orders(symbol)
        for o in working:
            if o.side != side or o.status == "held":
                continue
            key = min(o.id, o.sibling_id) if o.sibling_id else o.id
            groups[key] = max(groups.get(key, 0.0), o.leaves_qty)
        related = [o.id for o in working]
        return sum(groups.values()), related

    def qty_available(self, symbol: str) -> float:
        """Position size not held by working orders on the closing side (signed like qty)."""
        pos = self.positions.get(symbol)
        if pos is None or pos.qty == 0:
            return 0.0
        held, _ = self.held_for_orders(symbol, "sell" if pos.qty > 0 else "buy")
        left = abs(pos.qty) - held
        return left if pos.qty > 0 else -left

    # ---- matching ---------------------------------------------------------------------

    def advance(self) -> bool:
        """Deliver the next timestamp's bars and match against them; False at the tape's end."""
        i = self.index + 1
        if i >= len(self.tape):
            return False
        if self.tape.days[i] != self.tape.days[self.index]:
            self.last_equity = self.equity()
        self.index = i
        for bar in self.tape.bars_at(i):
            self._match_bar(bar, i)
        return True

    def _working(self, symbol: str, i: int) -> list[FakeOrder]:
        return [
            o
            for o in self.open_orders(symbol)
            if o.status in ("new", "partially_filled") and o.live_from <= i
        ]

    def _match_bar(self, bar: Bar, i: int) -> None:
        day = self.tape.days[i]
        queue = self._working(bar.symbol, i)
        for o in queue:
            if o.time_in_force == "day":
                if o.live_day is None:
                    o.live_day = day
                elif o.live_day != day:
                    self.terminate(o, "expired")
        done: set[str] = set()
        j = 0
        while j < len(queue):  # grows by the legs an open fill activates
            o = queue[j]
            j += 1
            if not o.is_open or o.status == "held" or o.live_from > i or o.id in done:
                continue
            px, rest = matching.at_open(o, bar.open)
            if rest:
                o.triggered = True
                o.live_from = i + 1
            elif px is not None:
                done.add(o.id)
                queue.extend(self.fill(o, px, i, at_open=True))
        for o in list(queue):
            if not o.is_open or o.live_from > i or o.id in done or o.type == "market":
                continue
            self._intrabar(o, bar, i, done)
        for o in queue:
            if o.is_open and o.live_from <= i and o.status != "held":
                matching.ratchet(o, bar.high, bar.low)
                if o.time_in_force == "ioc":
                    self.terminate(o, "canceled")

    def _intrabar(self, o: FakeOrder, bar: Bar, i: int, done: set[str]) -> None:
        sib = self.orders.get(o.sibling_id) if o.sibling_id else None
        if sib is None or not sib.is_open or sib.live_from > i or sib.id in done:
            px, rest = matching.intrabar(o, bar.high, bar.low)
            done.add(o.id)
            if rest:
                o.triggered = True
                o.live_from = i + 1
            elif px is not None:
                self.fill(o, px, i, at_open=False)
            return
        stop, target = (o, sib) if matching.is_stop_type(o) else (sib, o)
        done.update((o.id, sib.id))
        if matching.stop_touched(stop, bar.high, bar.low):
            self.fill(stop, matching.stop_level(stop), i, at_open=False)  # stop first
        elif matching.limit_touched(target, bar.high, bar.low):
            self.fill(target, float(target.limit_price), i, at_open=False)

    def fill(self, o: FakeOrder, px: float, i: int, *, at_open: bool) -> list[FakeOrder]:
        """Execute (part of) ``o`` at ``px``; returns the legs this fill activated."""
        q = o.leaves_qty if o.max_fill is None else min(o.leaves_qty, o.max_fill)
        ts = self.now
        cum = o.filled_qty + q
        o.filled_avg_price = ((o.filled_avg_price or 0.0) * o.filled_qty + px * q) / cum
        o.filled_qty = cum
        o.status = "filled" if o.leaves_qty <= 1e-9 else "partially_filled"
        o.updated_at = ts
        if o.status == "filled":
            o.filled_at = ts
        pos_qty = self._book(o.symbol, o.sign * q, px)
        self._n_exec += 1
        exec_id = fake_uuid("exec", self._n_exec)
        self.fills.append(
            Fill(exec_id, ts, o.id, o.symbol, o.side, q, px, cum, o.leaves_qty, o.status)
        )
        kind = "fill" if o.status == "filled" else "partial_fill"
        self.emit(kind, o, price=px, qty=q, position_qty=pos_qty, execution_id=exec_id)
        sib = self.orders.get(o.sibling_id) if o.sibling_id else None
        if sib is not None and sib.is_open:
            if o.status == "filled" or sib.qty - q <= sib.filled_qty:
                self.terminate(sib, "canceled")
            else:
                sib.qty -= q  # exits together never exceed the position
        if o.status == "filled":
            return self.activate_legs(o, live_from=i if at_open else i + 1)
        return []

    def _book(self, symbol: str, dq: float, px: float) -> float:
        """Apply a signed fill to the position and cash; return the new position size."""
        pos = self.positions.setdefault(symbol, Position())
        self.cash -= dq * px
        new = pos.qty + dq
        if pos.qty == 0 or (pos.qty > 0) == (dq > 0):
            pos.avg = (abs(pos.qty) * pos.avg + abs(dq) * px) / abs(new)
        elif (new > 0) != (pos.qty > 0) and new != 0:
            pos.avg = px  # crossed zero: the remainder opened at this price
        pos.qty = new
        if abs(new) <= 1e-9:
            del self.positions[symbol]
            return 0.0
        return new

    def activate_legs(self, parent: FakeOrder, *, live_from: int) -> list[FakeOrder]:
        """Turn a filled (or partly filled, then ended) entry's held legs into working orders."""
        out = []
        for leg_id in parent.legs:
            leg = self.orders[leg_id]
            if leg.status != "held":
                continue
            leg.status = "new"
            leg.qty = parent.filled_qty
            leg.live_from = max(leg.live_from, live_from)
            if leg.live_from <= self.index:  # live on this bar: its DAY session is today
                leg.live_day = self.tape.days[self.index]
            leg.updated_at = self.now
            if leg.type == "trailing_stop":
                leg.hwm = parent.filled_avg_price
                leg.stop_price = matching.trailing_level(leg)
            self.emit("new", leg)
            out.append(leg)
        return out

    def terminate(self, o: FakeOrder, status: str) -> None:
        """End an open order as ``canceled``/``expired``/``rejected``; settle its legs."""
        ts = self.now
        o.status = status
        o.updated_at = ts
        if status == "canceled":
            o.canceled_at = ts
        elif status == "expired":
            o.expired_at = ts
        else:
            o.failed_at = ts
        self.emit(status, o)
        if o.legs and o.filled_qty > 0 and o.order_class != "oco":
            self.activate_legs(o, live_from=self.index + 1)
        for leg_id in o.legs:  # an OCO's stop goes with its parent; held legs with their entry
            leg = self.orders[leg_id]
            if leg.status == "held" or (o.order_class == "oco" and leg.is_open):
                self.terminate(leg, "canceled")
