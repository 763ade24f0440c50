"""PortFakeBroker: an independent broker implementing only Broker port v2, in plain Python.

It knows orders, not brackets: market, limit, stop, stop-limit and trailing-stop orders,
OCO groups (when one member fills completely the others are cancelled, as at a broker with
native OCO), and optionally reduce-only enforcement (``reduce_only=True``: a reduce-only
order never trades against a flat position and shrinks to a smaller one, as the simulator
does; ``False``: it trades whatever it is, as Alpaca and IB do). Every protective leg, OCO
pairing, resize and cancel comes from backstop's bracket manager as commands.

The market is DESIGN.md's fill rules, written again without the compiled kernels: market at
the open; limit at min(open, L) / max(open, L) once touched; stop at max(open, S) /
min(open, S) once touched; stop-limit triggers like a stop and fills at the trigger within
its limit, else rests as a limit from the next bar; when two orders of one OCO group are
both touched inside a bar the stop fills first; trailing stops ratchet with each finished
bar. ``on_bar`` hands control to ``react`` after every event it emits, as a live broker's
client would hear each fill as it happens: orders sent during the open print are live for the
rest of that bar (a bracket leg of an entry filled at the open; from the next bar with
``legs_live_on_entry_bar=False``), orders sent later from the next bar.

The costs and limits are DESIGN.md's rules too, given as ``Costs``: slippage (ticks, or bps
rounded onto the tick grid against the taker) on market and stop fills, never on limits and
stop-limits; a commission per share with a minimum, per contract or as a fraction of the
notional (times the contract multiplier); a volume-participation cap (each symbol's fills in
one bar take at most that fraction of its volume, in whole lots; the rest keeps working); the
intrabar policy when both orders of an OCO pair are touched (stop first, target first, or the
level nearer the open). DAY orders expire at the first open of a later session; IOC orders are
cancelled at the end of their first live bar. ``fill_cap`` limits each fill as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import TERMINAL_STATUSES, OrderStatus, OrderType, ReasonCode, Side
from backstop.domain.enums import TimeInForce as TIF
from backstop.domain.events import (
    Account,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    Execution,
    OrderUpdate,
    OrderUpdateKind,
)

NAN = float("nan")
EPS = 1e-12
STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)
U = OrderUpdateKind


def bit(code: ReasonCode) -> int:
    return 1 << int(code)


@dataclass(frozen=True, slots=True)
class Costs:
    """The venue's cost and fill options (names as in ``BacktestConfig``)."""

    slippage: str = "none"  # none, ticks, bps
    slippage_value: float = 0.0
    commission: str = "zero"  # zero, per_share, per_contract, percent
    commission_rate: float = 0.0
    commission_min: float = 0.0
    max_participation: float = 0.0
    intrabar: str = "stop_first"  # stop_first, target_first, open_proximity
    legs_live_on_entry_bar: bool = True
    mults: dict[str, float] = field(default_factory=dict)
    lots: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class PortOrder:
    cid: str
    symbol: str
    side: int
    otype: OrderType
    qty: float
    live_from: int
    reduce_only: bool
    oco: str
    tif: TIF
    limit: float = NAN
    stop: float = NAN
    trail_pct: float = 0.0
    water: float = NAN
    status: OrderStatus = OrderStatus.ACCEPTED
    filled: float = 0.0
    avg: float = NAN
    accepted_ts: int = 0
    updated_ts: int = 0
    session: int = -1  # DAY orders: the session of their first live bar

    @property
    def working(self) -> bool:
        return self.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)

    @property
    def remaining(self) -> float:
        return self.qty - self.filled


class PortFakeBroker:
    """An in-memory broker speaking Broker port v2 and nothing else (see the module doc)."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        reduce_only: bool = True,
        max_working: int | None = None,
        quotes: Mapping[str, float] | None = None,
        ticks: Mapping[str, float] | None = None,
        cash: float = 100_000.0,
        fill_cap: float | None = None,
        refuse: frozenset[str] = frozenset(),
        costs: Costs | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.ticks = dict(ticks or {})
        self.fill_cap = fill_cap  # most one fill may take (partial fills); None: no cap
        self.refuse = refuse  # symbols whose entries the broker refuses (a 403, say)
        self.costs = costs or Costs()
        self.used = dict.fromkeys(self.symbols, 0.0)  # volume filled this bar, per symbol
        self.enforce_reduce_only = reduce_only
        self.max_working = max_working
        self.quotes = dict(quotes or {})
        self.cash = cash
        self.orders: dict[str, PortOrder] = {}
        self.held = dict.fromkeys(self.symbols, 0.0)
        self.executions: list[Execution] = []
        self.log: list[BrokerEvent] = []
        self._pending: list[BrokerEvent] = []
        self._bar = -1  # the bar being matched (or last matched)
        self._phase = "between"
        self._ts = 0
        self._react: Callable[[], object] | None = None
        self._volume = 0.0

    # ---- the port -------------------------------------------------------------------------
    def submit(self, command: SubmitOrder) -> None:
        if command.legs:
            raise NotImplementedError("PortFakeBroker: no native brackets (legs)")
        for cmd in command:
            if cmd.client_order_id in self.orders:
                self._report_again(self.orders[cmd.client_order_id])
                continue  # idempotent by client id: a resend places nothing
            if cmd.symbol not in self.held:
                raise KeyError(f"PortFakeBroker has no symbol {cmd.symbol!r}")
            at_open = self._phase == "open" and self.costs.legs_live_on_entry_bar
            live = self._bar if at_open else self._bar + 1
            o = PortOrder(
                cmd.client_order_id, cmd.symbol, int(cmd.side), cmd.order_type, float(cmd.qty),
                live, cmd.reduce_only, cmd.oco_group or "", cmd.tif,
            )  # fmt: skip
            o.limit = NAN if cmd.limit_price is None else cmd.limit_price
            o.stop = NAN if cmd.stop_price is None else cmd.stop_price
            if cmd.order_type == OrderType.TRAILING_STOP:
                o.trail_pct = float(cmd.trail_percent or 0.0)
                o.water = o.stop / (1.0 + o.side * o.trail_pct)  # the price it trails from
            o.accepted_ts = o.updated_ts = self._ts
            self.orders[o.cid] = o
            working = [w for w in self.orders.values() if w.symbol == o.symbol and w.working]
            if o.symbol in self.refuse and not o.reduce_only:
                o.status = OrderStatus.REJECTED
                self._emit(
                    OrderUpdate(U.REJECTED, o.cid, self._ts, self._ts,
                                message=f"insufficient buying power for {o.symbol}")
                )  # fmt: skip
            elif self.max_working is not None and len(working) > self.max_working:
                o.status = OrderStatus.REJECTED
                why = bit(ReasonCode.TOO_MANY_WORKING_ORDERS)
                self._emit(OrderUpdate(U.REJECTED, o.cid, self._ts, self._ts, reasons=why))
            else:
                self._emit(OrderUpdate(U.ACCEPTED, o.cid, self._ts, self._ts))

    def cancel(self, command: CancelOrder) -> None:
        o = self.orders.get(command.client_order_id)
        if o is not None and o.working:
            self._end(o, OrderStatus.CANCELED, command.reasons)

    def amend(self, command: AmendOrder) -> None:
        o = self.orders.get(command.client_order_id)
        if o is None or not o.working:
            return
        if command.qty is not None:
            o.qty = max(command.qty, o.filled)
        if command.stop_price is not None:
            o.stop = command.stop_price
        if command.limit_price is not None:
            o.limit = command.limit_price
        self._emit(
            OrderUpdate(
                U.REPLACED, o.cid, self._ts, self._ts, reasons=command.reasons, qty=o.qty,
                stop_price=None if o.stop != o.stop else o.stop,
                limit_price=None if o.limit != o.limit else o.limit,
            )
        )  # fmt: skip
        if o.remaining <= EPS:
            self._end(o, OrderStatus.FILLED, 0)

    def account(self) -> Account:
        return Account(self.cash, self.cash, self.cash)

    def positions(self) -> list[BrokerPosition]:
        return [BrokerPosition(s, q, NAN) for s, q in sorted(self.held.items()) if q]

    def open_orders(self) -> list[BrokerOrder]:
        return [self._report(o) for o in self.orders.values() if o.working]

    def order(self, client_order_id: str) -> BrokerOrder | None:
        o = self.orders.get(client_order_id)
        return None if o is None else self._report(o)

    def recent_fills(self, since_ns: int) -> list[Execution]:
        return [e for e in self.executions if e.ts_event >= since_ns]

    def last_price(self, symbol: str) -> float:
        return self.quotes.get(symbol, math.nan)

    def drain_events(self) -> list[BrokerEvent]:
        out, self._pending = self._pending, []
        return out

    # ---- the market ---------------------------------------------------------------------------
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
        react: Callable[[], object] | None = None,
    ) -> None:
        """Match ``symbol``'s working orders against bar row ``i``."""
        self._bar, self._ts, self._react, self._volume = i, ts, react, volume
        self.used[symbol] = 0.0
        self._phase = "open"
        k = 0
        while k < len(self.orders):  # orders sent at the open join this same pass
            o = list(self.orders.values())[k]
            k += 1
            if not self._live(o, symbol, i):
                continue
            if o.tif == TIF.DAY:
                if o.session < 0:
                    o.session = session
                elif o.session != session:
                    self._end(o, OrderStatus.EXPIRED, bit(ReasonCode.ORDER_EXPIRED))
                    continue
            px = self._open_price(o, open_, i)
            if px is not None:
                self._fill(o, *px)
        self._phase = "intrabar"
        seen: set[str] = set()
        for o in list(self.orders.values()):
            if not self._live(o, symbol, i) or o.otype == OrderType.MARKET or o.cid in seen:
                continue
            seen.add(o.cid)
            group = [
                g
                for g in self.orders.values()
                if o.oco and g.oco == o.oco and g is not o and self._live(g, symbol, i)
            ]
            if group:
                seen.update(g.cid for g in group)
                self._pair(o, group[0], open_, high, low)
                continue
            px = self._intrabar_price(o, high, low, i)
            if px is not None:
                self._fill(o, *px)
        for o in self.orders.values():
            if not self._live(o, symbol, i):
                continue
            if o.otype == OrderType.TRAILING_STOP:
                o.water = max(o.water, high) if o.side < 0 else min(o.water, low)
                level = self._round(o.symbol, o.water * (1.0 + o.side * o.trail_pct))
                if (level > o.stop) if o.side < 0 else (level < o.stop):
                    o.stop = level  # the ratchet is news: the core's stop moves read it
                    self._emit(
                        OrderUpdate(U.REPLACED, o.cid, self._ts, self._ts, qty=o.qty,
                                    stop_price=o.stop)
                    )  # fmt: skip
            if o.tif == TIF.IOC:
                self._end(o, OrderStatus.CANCELED, bit(ReasonCode.ORDER_EXPIRED))
        self._phase = "between"
        self._react = None

    def _pair(self, a: PortOrder, b: PortOrder, open_: float, high: float, low: float) -> None:
        """An OCO pair (a stop and a limit) inside the bar: the intrabar policy picks the fill
        when both levels are touched."""
        stop, target = (a, b) if a.otype in STOP_TYPES else (b, a)
        hit_stop, hit_target = _stop_touched(stop, high, low), _limit_touched(target, high, low)
        stop_wins = hit_stop
        if hit_stop and hit_target:
            nearer = abs(open_ - stop.stop) <= abs(target.limit - open_)
            policy = self.costs.intrabar
            stop_wins = policy == "stop_first" or (policy == "open_proximity" and nearer)
        if stop_wins:
            self._fill(stop, stop.stop, True)
        elif hit_target:
            self._fill(target, target.limit, False)

    def _open_price(self, o: PortOrder, open_: float, i: int) -> tuple[float, bool] | None:
        """(price, slippage applies) at the open print, or None."""
        if o.otype == OrderType.MARKET:
            return open_, True
        if o.otype == OrderType.LIMIT:
            return (open_, False) if _within_limit(o, open_) else None
        gapped = open_ >= o.stop if o.side > 0 else open_ <= o.stop
        if not gapped:
            return None
        if o.otype != OrderType.STOP_LIMIT:
            return open_, True
        if _within_limit(o, open_):
            return open_, False
        self._rest_as_limit(o, i)
        return None

    def _intrabar_price(
        self, o: PortOrder, high: float, low: float, i: int
    ) -> tuple[float, bool] | None:
        """(price, slippage applies) at the order's level inside the bar, or None."""
        if o.otype == OrderType.LIMIT:
            return (o.limit, False) if _limit_touched(o, high, low) else None
        if not _stop_touched(o, high, low):
            return None
        if o.otype != OrderType.STOP_LIMIT:
            return o.stop, True
        if _within_limit(o, o.stop):
            return o.stop, False
        self._rest_as_limit(o, i)
        return None

    def _fill(self, o: PortOrder, px: float, slip: bool) -> None:
        if not o.working:
            return
        qty = o.remaining
        if o.reduce_only and self.enforce_reduce_only:
            held = self.held[o.symbol]
            if held == 0.0 or (held > 0) == (o.side > 0):
                self._end(o, OrderStatus.CANCELED, bit(ReasonCode.LEG_CANCELED_POSITION_CLOSED))
                return
            qty = min(qty, abs(held))
        c = self.costs
        if c.max_participation > 0.0:
            lot = c.lots.get(o.symbol, 1.0)
            room = c.max_participation * self._volume - self.used[o.symbol]
            qty = min(qty, math.floor(room / lot + 1e-9) * lot)
            if qty <= 0.0:
                return  # nothing left of the bar's volume: it keeps working
        if self.fill_cap is not None:
            qty = min(qty, self.fill_cap)
        reference = px
        if slip:
            px = self._slipped(o.symbol, o.side, px)
        mult = c.mults.get(o.symbol, 1.0)
        fee = self._commission(qty, px, mult)
        self.used[o.symbol] += qty
        prev = o.filled
        o.filled += qty
        o.avg = px if prev == 0 else (o.avg * prev + px * qty) / o.filled
        self.held[o.symbol] += o.side * qty
        self.cash -= o.side * qty * px * mult + fee
        ex = Execution(
            o.cid, f"X{len(self.executions)}", o.symbol, Side(o.side), qty, px, fee,
            max(o.remaining, 0.0), self._ts, self._ts, slippage=abs(px - reference),
        )  # fmt: skip
        self.executions.append(ex)
        o.updated_ts = self._ts
        if o.remaining <= EPS:
            o.status = OrderStatus.FILLED
        else:
            o.status = OrderStatus.PARTIALLY_FILLED
        self._emit(ex)
        if o.status == OrderStatus.FILLED and o.oco:
            for g in self.orders.values():
                if g.oco == o.oco and g is not o and g.working:
                    self._end(g, OrderStatus.CANCELED, bit(ReasonCode.OCO_SIBLING_FILLED))

    def _report_again(self, o: PortOrder) -> None:
        """A known client id sent again: report the order as it stands (port contract),
        each event stamped when it happened."""
        self._emit(OrderUpdate(U.ACCEPTED, o.cid, o.accepted_ts, self._ts))
        for ex in self.executions:
            if ex.client_order_id == o.cid:
                self._emit(ex)
        kind = {OrderStatus.CANCELED: U.CANCELED, OrderStatus.EXPIRED: U.EXPIRED}.get(o.status)
        if kind is not None:
            self._emit(OrderUpdate(kind, o.cid, o.updated_ts, self._ts))

    def _end(self, o: PortOrder, status: OrderStatus, reasons: int) -> None:
        if o.status in TERMINAL_STATUSES:
            raise RuntimeError(f"order {o.cid}: {o.status.name} -> {status.name}")
        o.status = status
        o.updated_ts = self._ts
        kind = {OrderStatus.CANCELED: U.CANCELED, OrderStatus.EXPIRED: U.EXPIRED}.get(status)
        if kind is not None:
            self._emit(OrderUpdate(kind, o.cid, self._ts, self._ts, reasons=reasons))

    def _emit(self, event: BrokerEvent) -> None:
        self._pending.append(event)
        self.log.append(event)
        if self._react is not None:
            self._react()

    def _rest_as_limit(self, o: PortOrder, i: int) -> None:
        """A stop-limit triggered beyond its limit rests as a limit from the next bar."""
        o.otype, o.live_from = OrderType.LIMIT, i + 1
        self._emit(
            OrderUpdate(
                U.REPLACED, o.cid, self._ts, self._ts, limit_price=o.limit,
                order_type=OrderType.LIMIT,
            )
        )  # fmt: skip

    def _slipped(self, symbol: str, side: int, price: float) -> float:
        """The price moved against the taker: whole ticks, or bps landed on the tick grid
        (up for buys, down for sells)."""
        c, tick = self.costs, self.ticks.get(symbol, 0.0)
        if c.slippage == "ticks":
            return price + side * c.slippage_value * tick
        if c.slippage != "bps":
            return price
        moved = price * (1.0 + side * c.slippage_value * 1e-4)
        if tick > 0.0:
            steps = moved / tick
            steps = math.ceil(steps - 1e-9) if side > 0 else math.floor(steps + 1e-9)
            moved = round(steps * tick, 10)
        return moved

    def _commission(self, qty: float, price: float, mult: float) -> float:
        c = self.costs
        if c.commission == "per_share":
            return max(c.commission_rate * qty, c.commission_min)
        if c.commission == "per_contract":
            return c.commission_rate * qty
        if c.commission == "percent":
            return c.commission_rate * qty * price * mult
        return 0.0

    def _round(self, symbol: str, price: float) -> float:
        tick = self.ticks.get(symbol, 0.0)
        if tick <= 0.0 or math.isnan(price):
            return price
        return round(round(price / tick) * tick, 10)

    def _live(self, o: PortOrder, symbol: str, i: int) -> bool:
        return o.symbol == symbol and o.working and o.live_from <= i

    def _report(self, o: PortOrder) -> BrokerOrder:
        return BrokerOrder(
            o.cid, o.cid, o.symbol, Side(o.side), o.qty, o.filled, o.status, o.otype, o.tif,
            None if o.limit != o.limit else o.limit, None if o.stop != o.stop else o.stop,
            avg_fill_price=None if o.avg != o.avg else o.avg, updated_ts=o.updated_ts,
        )  # fmt: skip


def _within_limit(o: PortOrder, px: float) -> bool:
    return px <= o.limit if o.side > 0 else px >= o.limit


def _stop_touched(o: PortOrder, high: float, low: float) -> bool:
    return high >= o.stop if o.side > 0 else low <= o.stop


def _limit_touched(o: PortOrder, high: float, low: float) -> bool:
    return low <= o.limit if o.side > 0 else high >= o.limit
