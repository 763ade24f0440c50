"""FakeBroker: a second, independent implementation of the Broker protocol, in plain Python.

The simulated exchange (``backstop.brokers.sim``) matches orders with the compiled core's
kernels. This fake implements the same protocol from DESIGN.md's rules alone ("Fill rules",
"The Broker protocol"), in the most obvious Python, and imports none of those kernels: the
parity tests (``test_broker_parity.py``) run the pipeline against both brokers and require the
same verdicts, so a bug in the kernels shows up as a difference instead of being checked
against itself. It is also what a live adapter looks like from the pipeline's side: orders
at a remote book, and a stream of events that only ``drain_events`` delivers.

What it does:

- Orders are dataclasses numbered 0, 1, 2... in creation order. A bracket's legs are created
  when its entry fills, stop leg first, then target (the numbering the simulator uses).
- Entries: market, limit, stop and stop-limit, with absolute bracket levels or levels as a
  fraction of the fill price; ``trail_pct > 0`` makes the stop leg a trailing stop.
- Exits: reduce-only market orders; sending one cancels the symbol's working entries.
- ``on_bar`` applies the default fill rules: market at the open; limit at min(open, L) for
  buys / max(open, L) for sells once touched; stop at max(open, S) / min(open, S) once touched;
  stop-limit triggers like a stop and fills at the trigger price when that is within its
  limit, else rests as a limit from the next bar; legs of an entry filled at the open are
  live on that bar; stop first when both legs are touched; OCO sibling cancelled at the
  fill's ts; a reduce-only order never trades against a flat position and shrinks to a
  smaller one; trailing stops ratchet with each finished bar they are live on.
- No slippage, zero fees, no volume cap, GTC only: anything else raises NotImplementedError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backstop.domain.enums import (
    TERMINAL_STATUSES,
    OrderRole,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
    TimeInForce,
)
from backstop.engine.broker import (
    BrokerEvent,
    EntryRequest,
    ExitRequest,
    FillEvent,
    OpenOrder,
    OrderStatusEvent,
    fill_record,
)

NAN = float("nan")
EPS = 1e-12
ENTRY_TYPES = (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT)
STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)


def bit(code: ReasonCode) -> int:
    """The bit of one reason code in a reason mask."""
    return 1 << int(code)


@dataclass(slots=True)
class FakeOrder:
    """One order as the fake broker keeps it; an entry also carries its bracket's levels."""

    order_id: int
    cycle: int
    strategy: int
    symbol: str
    side: int  # +1 buy, -1 sell
    otype: OrderType
    role: OrderRole
    qty: float
    live_from: int  # first bar row it may trade on
    limit: float = NAN
    stop: float = NAN  # trigger of a stop / stop-limit, current level of a stop leg
    status: OrderStatus = OrderStatus.CREATED
    filled: float = 0.0
    reasons: int = 0
    leg_stop: float = NAN  # entries: absolute levels of the bracket ...
    leg_target: float = NAN
    stop_pct: float = 0.0  # ... or fractions of the fill price
    target_pct: float = 0.0
    trail_pct: float = 0.0
    sibling: int = -1  # legs: the other leg of the OCO pair
    water: float = NAN  # trailing legs: best price since the entry filled

    @property
    def working(self) -> bool:
        return self.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)

    @property
    def reduce_only(self) -> bool:
        return self.role != OrderRole.ENTRY

    @property
    def remaining(self) -> float:
        return self.qty - self.filled


class FakeBroker:
    """An in-memory broker with a live-style event stream (see the module doc).

    ``ticks`` gives each symbol's tick size (prices are rounded when an order is built);
    ``max_working`` is the broker's limit on working orders per symbol (None: no limit):
    an order past it is REJECTED with TOO_MANY_WORKING_ORDERS, as a real broker refuses;
    ``quotes`` are the last prices it reports (``last_price``) for symbols it has quotes for.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        ticks: Mapping[str, float] | None = None,
        max_working: int | None = None,
        quotes: Mapping[str, float] | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.index = {s: k for k, s in enumerate(self.symbols)}
        self.ticks = dict(ticks or {})
        self.max_working = max_working
        self.quotes = dict(quotes or {})  # last prices a live broker would quote
        self.orders: list[FakeOrder] = []
        self.fills: list[FillEvent] = []
        self.positions = dict.fromkeys(self.symbols, 0.0)
        self.log: list[BrokerEvent] = []  # every event ever emitted, for tests to read
        self._pending: list[BrokerEvent] = []

    # ---- Broker protocol ---------------------------------------------------------------
    def submit_entry(self, request: EntryRequest) -> int:
        """Accept an entry with its bracket levels (or reject it: too many working)."""
        if request.tif != TimeInForce.GTC:
            raise NotImplementedError(f"FakeBroker supports GTC only, got tif={request.tif}")
        if request.order_type not in ENTRY_TYPES:
            raise NotImplementedError(f"FakeBroker entries: no {request.order_type!r}")
        otype = OrderType(request.order_type)
        o = self._create(request, request.side, otype, OrderRole.ENTRY, request.qty)
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            o.limit = self._round(o.symbol, request.limit_price)
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT):
            o.stop = self._round(o.symbol, request.entry_stop_price)
        o.leg_stop = self._round(o.symbol, request.stop_price)
        o.leg_target = self._round(o.symbol, request.target_price)
        o.stop_pct, o.target_pct = request.stop_pct, request.target_pct
        o.trail_pct = request.trail_pct
        self._accept(o, request.ts)
        return o.order_id

    def submit_exit(self, request: ExitRequest) -> int:
        """Cancel the symbol's working entries, then accept a reduce-only market exit."""
        if request.role == OrderRole.ENTRY:
            raise ValueError("an exit needs an exit role")
        why = request.cancel_reasons | bit(ReasonCode.ENTRY_REMAINDER_CANCELED)
        for w in self._working(request.symbol):
            if w.role == OrderRole.ENTRY:
                self.cancel(w.order_id, request.ts, why)
        o = self._create(request, request.side, OrderType.MARKET, request.role, request.qty)
        self._accept(o, request.ts)
        return o.order_id

    def cancel(self, order_id: int, ts: int, reasons: int = 0) -> None:
        """Cancel a working order; cancelling a finished one does nothing (it already ended)."""
        o = self.orders[order_id]
        if o.working:
            self._set(o, OrderStatus.CANCELED, ts, reasons)

    def amend_stop(self, order_id: int, stop_price: float, ts: int, reasons: int = 0) -> None:
        """Move a working stop leg's trigger; a finished order cannot be amended."""
        del ts
        o = self.orders[order_id]
        if o.otype not in STOP_TYPES:
            raise ValueError(f"order {order_id} is not a stop order")
        if o.working:
            o.stop = self._round(o.symbol, stop_price)
            o.reasons |= reasons

    def position(self, symbol: str) -> float:
        return self.positions[symbol]

    def last_price(self, symbol: str) -> float:
        return self.quotes.get(symbol, math.nan)

    def open_orders(self, symbol: str) -> list[OpenOrder]:
        return [
            OpenOrder(o.order_id, symbol, Side(o.side), o.role, o.status, o.qty, o.filled, o.stop)
            for o in self._working(symbol)
        ]

    def drain_events(self) -> list[BrokerEvent]:
        out, self._pending = self._pending, []
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
        """Trade ``symbol``'s working orders against bar row ``i``: the open print first (in
        id order), then levels touched inside the bar, then trailing stops ratchet."""
        del volume, session  # no volume cap; GTC only, so sessions never expire anything
        k = 0
        while k < len(self.orders):  # legs created at the open join this same pass
            o = self.orders[k]
            k += 1
            if self._live(o, symbol, i):
                px = self._open_price(o, open_, i)
                if px is not None:
                    self._fill(o, px, ts, i, at_open=True)
        seen: set[int] = set()
        for o in list(self.orders):  # legs created inside the bar start on the next one
            if o.order_id in seen or o.otype == OrderType.MARKET or not self._live(o, symbol, i):
                continue
            seen.add(o.order_id)
            sib = self.orders[o.sibling] if o.sibling >= 0 else None
            if sib is not None and self._live(sib, symbol, i):
                seen.add(sib.order_id)
                stop, target = (o, sib) if o.otype in STOP_TYPES else (sib, o)
                if _stop_touched(stop, high, low):  # both touched: the stop fills first
                    self._fill(stop, stop.stop, ts, i, at_open=False)
                elif _limit_touched(target, high, low):
                    self._fill(target, target.limit, ts, i, at_open=False)
                continue
            px = self._intrabar_price(o, high, low, i)
            if px is not None:
                self._fill(o, px, ts, i, at_open=False)
        for o in self.orders:
            if o.otype == OrderType.TRAILING_STOP and self._live(o, symbol, i):
                o.water = max(o.water, high) if o.side < 0 else min(o.water, low)
                level = self._trail_level(o)
                if (level > o.stop) if o.side < 0 else (level < o.stop):  # only tightens
                    o.stop = level

    # ---- fill rules --------------------------------------------------------------------
    def _open_price(self, o: FakeOrder, open_: float, i: int) -> float | None:
        """The fill price at the open print, or None when the order does not trade there."""
        if o.otype == OrderType.MARKET:
            return open_
        if o.otype == OrderType.LIMIT:
            return open_ if _within_limit(o, open_) else None
        gapped = open_ >= o.stop if o.side > 0 else open_ <= o.stop
        if not gapped:
            return None
        if o.otype != OrderType.STOP_LIMIT or _within_limit(o, open_):
            return open_  # a gap through a stop fills at the open (the worse price)
        self._rest_as_limit(o, i)
        return None

    def _intrabar_price(self, o: FakeOrder, high: float, low: float, i: int) -> float | None:
        """The fill price of a level touched inside the bar, or None."""
        if o.otype == OrderType.LIMIT:
            return o.limit if _limit_touched(o, high, low) else None
        if not _stop_touched(o, high, low):
            return None
        if o.otype != OrderType.STOP_LIMIT or _within_limit(o, o.stop):
            return o.stop
        self._rest_as_limit(o, i)
        return None

    @staticmethod
    def _rest_as_limit(o: FakeOrder, i: int) -> None:
        """A stop-limit triggered beyond its limit rests as a plain limit from the next bar."""
        o.otype = OrderType.LIMIT
        o.live_from = i + 1

    def _fill(self, o: FakeOrder, px: float, ts: int, i: int, at_open: bool) -> None:
        """Fill what can be filled of ``o`` at ``px``, then its consequences: OCO sibling
        cancelled, bracket legs for an entry, reduce-only orders fitted to the position."""
        qty = o.remaining
        if o.reduce_only:
            held = self.positions[o.symbol]
            if held == 0.0 or (held > 0) == (o.side > 0):
                self._set(o, OrderStatus.CANCELED, ts, bit(ReasonCode.LEG_CANCELED_POSITION_CLOSED))
                return
            qty = min(qty, abs(held))
        record = fill_record(
            fill_id=len(self.fills),
            order_id=o.order_id,
            trade_cycle=o.cycle,
            strategy=o.strategy,
            sym=self.index[o.symbol],
            side=o.side,
            role=int(o.role),
            qty=qty,
            price=px,
            fee=0.0,
            ts=ts,
            bar=i,
        )
        fill = FillEvent(ts, ts, o.order_id, o.symbol, Side(o.side), qty, px, 0.0, record)
        self.fills.append(fill)
        self._emit(fill)
        o.filled += qty
        self.positions[o.symbol] += o.side * qty
        if o.remaining <= EPS:
            self._set(o, OrderStatus.FILLED, ts)
            if o.sibling >= 0:
                self.cancel(o.sibling, ts, bit(ReasonCode.OCO_SIBLING_FILLED))
        else:
            self._set(o, OrderStatus.PARTIALLY_FILLED, ts)
        if o.role == OrderRole.ENTRY:  # no volume cap: an entry always fills whole, once
            self._bracket(o, qty, px, ts, i, at_open)
        self._fit_reduce_only(o.symbol, ts)

    def _bracket(self, e: FakeOrder, qty: float, px: float, ts: int, i: int, at_open: bool):
        """Give a filled entry its OCO pair (stop leg first, then target), sized to the fill."""
        live = i if at_open else i + 1
        stop = e.leg_stop
        if math.isnan(stop) and e.stop_pct > 0:
            stop = px * (1.0 - e.side * e.stop_pct)
        target = e.leg_target
        if math.isnan(target) and e.target_pct > 0:
            target = px * (1.0 + e.side * e.target_pct)
        legs = []
        if e.trail_pct > 0 or not math.isnan(stop):
            trailing = e.trail_pct > 0
            otype = OrderType.TRAILING_STOP if trailing else OrderType.STOP
            role = OrderRole.TRAILING if trailing else OrderRole.STOP_LOSS
            leg = self._create_leg(e, otype, role, qty, live)
            leg.stop = self._round(e.symbol, stop)
            if trailing:
                leg.trail_pct, leg.water = e.trail_pct, px
                leg.stop = self._trail_level(leg)
            legs.append(leg)
        if not math.isnan(target):
            leg = self._create_leg(e, OrderType.LIMIT, OrderRole.TAKE_PROFIT, qty, live)
            leg.limit = self._round(e.symbol, target)
            legs.append(leg)
        if len(legs) == 2:
            legs[0].sibling, legs[1].sibling = legs[1].order_id, legs[0].order_id
        for leg in legs:
            self._accept(leg, ts)

    def _fit_reduce_only(self, symbol: str, ts: int) -> None:
        """Reduce-only orders never exceed the position: cancel them when it is flat (or on
        their side), shrink them to it when it is smaller than what they would close."""
        held = self.positions[symbol]
        for o in self._working(symbol):
            if not o.reduce_only:
                continue
            if held == 0.0 or (held > 0) == (o.side > 0):
                self._set(o, OrderStatus.CANCELED, ts, bit(ReasonCode.LEG_CANCELED_POSITION_CLOSED))
            elif o.remaining > abs(held) + EPS:
                o.qty = o.filled + abs(held)
                o.reasons |= bit(ReasonCode.LEG_RESIZED_TO_POSITION)

    def _trail_level(self, o: FakeOrder) -> float:
        """A trailing leg's level: ``trail_pct`` below the best price (above it for shorts)."""
        trail = o.water * o.trail_pct
        return self._round(o.symbol, o.water - trail if o.side < 0 else o.water + trail)

    # ---- book-keeping ------------------------------------------------------------------
    def _create(
        self,
        request: EntryRequest | ExitRequest,
        side: int,
        otype: OrderType,
        role: OrderRole,
        qty: float,
    ) -> FakeOrder:
        """A new order of a request, live from the bar after the one whose close sent it."""
        if request.symbol not in self.index:
            raise KeyError(f"FakeBroker has no symbol {request.symbol!r}")
        if not qty > 0:
            raise ValueError(f"order quantity must be positive, got {qty}")
        o = FakeOrder(
            len(self.orders),
            request.trade_cycle,
            request.strategy,
            request.symbol,
            int(side),
            otype,
            OrderRole(role),
            float(qty),
            request.bar + 1,
        )
        self.orders.append(o)
        return o

    def _create_leg(
        self, e: FakeOrder, otype: OrderType, role: OrderRole, qty: float, live: int
    ) -> FakeOrder:
        """A reduce-only leg of entry ``e``: opposite side, same cycle and strategy."""
        o = FakeOrder(
            len(self.orders), e.cycle, e.strategy, e.symbol, -e.side, otype, role, qty, live
        )
        self.orders.append(o)
        return o

    def _accept(self, o: FakeOrder, ts: int) -> None:
        """Accept a new order, or reject it when its symbol already has ``max_working``."""
        if self.max_working is not None and len(self._working(o.symbol)) >= self.max_working:
            self._set(o, OrderStatus.REJECTED, ts, bit(ReasonCode.TOO_MANY_WORKING_ORDERS))
        else:
            self._set(o, OrderStatus.ACCEPTED, ts)

    def _set(self, o: FakeOrder, status: OrderStatus, ts: int, reasons: int = 0) -> None:
        """Move an order to ``status`` and report it; a finished order never changes again."""
        if o.status in TERMINAL_STATUSES:
            raise RuntimeError(f"order {o.order_id}: illegal {o.status.name} -> {status.name}")
        o.status = status
        o.reasons |= reasons
        self._emit(OrderStatusEvent(ts, ts, o.order_id, status, o.reasons))

    def _emit(self, event: BrokerEvent) -> None:
        self._pending.append(event)
        self.log.append(event)

    def _working(self, symbol: str) -> list[FakeOrder]:
        return [o for o in self.orders if o.symbol == symbol and o.working]

    def _live(self, o: FakeOrder, symbol: str, i: int) -> bool:
        return o.symbol == symbol and o.working and o.live_from <= i

    def _round(self, symbol: str, price: float) -> float:
        """Round a price to the symbol's tick (unknown tick or no price: unchanged)."""
        tick = self.ticks.get(symbol, 0.0)
        if tick <= 0.0 or math.isnan(price):
            return price
        return round(round(price / tick) * tick, 10)


def _within_limit(o: FakeOrder, px: float) -> bool:
    """Whether ``px`` is at or better than the order's limit."""
    return px <= o.limit if o.side > 0 else px >= o.limit


def _stop_touched(o: FakeOrder, high: float, low: float) -> bool:
    return high >= o.stop if o.side > 0 else low <= o.stop


def _limit_touched(o: FakeOrder, high: float, low: float) -> bool:
    return low <= o.limit if o.side > 0 else high >= o.limit
