"""ReplayBroker: a Broker port v2 that follows the recorded broker until today's decisions
differ, then simulates.

While today's pipeline decides what the bot decided, the world stays the one that happened:
the core's order for such a decision stands for the bot's recorded order, and the recorded
fills arrive as executions of it (a bracket leg's fill as one of the core's working legs of
that symbol and kind). Protective orders, cancels and amends the core sends meanwhile are
kept as stand-ins and answered at once. A recorded fill the core has no order for (an order
the bot placed for a decision it never logged) is handed to ``adopt`` first, as reconcile
adopts an order the mirror does not know. At the first decision that differs the broker
switches to the simulated exchange, holding the recorded position, and the stand-ins still
working move there with what is left of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from backstop.brokers.sim.exchange import SimExchange
from backstop.domain.commands import AmendOrder, CancelOrder, SubmitOrder
from backstop.domain.enums import OrderRole, OrderStatus, Side
from backstop.domain.events import (
    Account,
    BrokerEvent,
    BrokerOrder,
    BrokerPosition,
    Execution,
    OrderUpdate,
    OrderUpdateKind,
)
from backstop.replay.decisions import Decision
from backstop.replay.events import BrokerFill
from backstop.replay.events import BrokerOrder as RecordedOrder
from backstop.replay.rerun import RECORDED, SIMULATED, BookedFill, Divergence, sent_text

EPS = 1e-9
U = OrderUpdateKind
STOP_ROLES = (OrderRole.STOP_LOSS, OrderRole.TRAILING)
Adopt = Callable[[BrokerOrder, OrderRole, int], None]


@dataclass(slots=True)
class StandIn:
    """An order of the core's, standing for the bot's while the broker follows the record."""

    command: SubmitOrder
    filled: float = 0.0
    working: bool = True

    @property
    def remaining(self) -> float:
        return self.command.qty - self.filled


class ReplayBroker:
    """See the module doc; ``sim`` is the simulated exchange it switches to."""

    def __init__(
        self,
        symbols: tuple[str, ...],
        inst,  # type: ignore[no-untyped-def]
        prm,
        fills: list[BrokerFill],
        orders: list[RecordedOrder],
        start_pos: dict[str, float],
        cash: float = 0.0,
    ) -> None:
        self.symbols = symbols
        self.sim = SimExchange(symbols, inst, prm, cash=cash)
        self.following = True
        self.recorded = sorted(fills, key=lambda f: f.ts)
        self.order_types = {o.order_id: (o.order_type or "", o.parent_id) for o in orders}
        self.bot_qty: dict[str, float] = {}
        for f in self.recorded:
            if f.order_id:
                self.bot_qty[f.order_id] = self.bot_qty.get(f.order_id, 0.0) + f.qty
        self.next_fill = 0
        self.actual = dict(start_pos)
        for symbol, qty in start_pos.items():
            if symbol in self.sim.index:
                self.sim.seed_position(symbol, qty)
        self.booked: list[BookedFill] = []
        self.expected: Decision | None = None
        self.sent_for_expected = False
        self.divergence: Divergence | None = None
        self.cycle_of_order: dict[str, int] = {}
        self.stand_ins: dict[str, StandIn] = {}
        self.core_of_bot: dict[str, str] = {}  # bot order id -> the core's client id
        self.adopt: Adopt | None = None
        self._events: list[BrokerEvent] = []
        self._ts = 0

    # ---- the recorded world ---------------------------------------------------------------
    def advance(self, ts: int) -> None:
        """Deliver the recorded fills up to ``ts`` while following the recorded broker."""
        while self.following and self.next_fill < len(self.recorded):
            f = self.recorded[self.next_fill]
            if f.ts > ts:
                break
            self.next_fill += 1
            self._book_recorded(f)

    def _book_recorded(self, f: BrokerFill) -> None:
        before = self.actual.get(f.symbol, 0.0)
        after = before + f.side * f.qty
        self.actual[f.symbol] = after
        if f.symbol in self.sim.index:
            self.sim.seed_position(f.symbol, after)
        kind, parent = self.order_types.get(f.order_id or "", ("", None))
        role = OrderRole.ENTRY
        if abs(after) < abs(before) or before * after < 0:
            role = OrderRole.SIGNAL_EXIT
            if parent is not None:
                role = OrderRole.STOP_LOSS if "stop" in kind else OrderRole.TAKE_PROFIT
        stand_in = self._stand_in_for(f, role)
        stand_in.filled += f.qty
        cmd = stand_in.command
        if stand_in.remaining <= EPS:
            stand_in.working = False
        self._events.append(
            Execution(
                cmd.client_order_id, f.exec_id or f"R{self.next_fill - 1}", f.symbol,
                Side(f.side), f.qty, f.price, f.fee or 0.0, max(stand_in.remaining, 0.0),
                f.ts, f.ts,
            )
        )  # fmt: skip
        self.booked.append(
            BookedFill(
                f.ts, f.symbol, f.side, f.qty, f.price, f.fee or 0.0, RECORDED, f.order_id or "?"
            )
        )

    def _stand_in_for(self, f: BrokerFill, role: OrderRole) -> StandIn:
        """The core's order a recorded fill belongs to (adopted when the core has none)."""
        bot = f.order_id or ""
        cid = self.core_of_bot.get(bot)
        if cid is not None and self.stand_ins[cid].remaining >= f.qty - EPS:
            return self.stand_ins[cid]
        if role != OrderRole.ENTRY and role != OrderRole.SIGNAL_EXIT:
            family = STOP_ROLES if role == OrderRole.STOP_LOSS else (OrderRole.TAKE_PROFIT,)
            for cid, s in self.stand_ins.items():
                c = s.command
                same = c.symbol == f.symbol and c.side == f.side and c.role in family
                if s.working and same and s.remaining >= f.qty - EPS:
                    self.core_of_bot[bot] = cid
                    return s
        cid = f"bot-{bot or 'fill'}-{self.next_fill - 1}"
        qty = max(self.bot_qty.get(bot, f.qty), f.qty)
        cycle = self.cycle_of_order.get(bot, -1)
        command = SubmitOrder(
            cid, f.symbol, Side(f.side), qty, role=role, trade_cycle_id=cycle,
            reduce_only=role != OrderRole.ENTRY, ts=f.ts,
        )  # fmt: skip
        self.stand_ins[cid] = StandIn(command)
        if bot:
            self.core_of_bot[bot] = cid
        if self.adopt is not None:
            self.adopt(self._report(self.stand_ins[cid]), role, cycle)
        return self.stand_ins[cid]

    def expect(self, decision: Decision, ts: int) -> None:
        """The next decision to judge: what the bot did about it decides "the same"."""
        self.advance(ts)
        self.expected = decision
        self.sent_for_expected = False

    def settle(self, ts: int) -> None:
        """After the decision: the bot sent an order today's pipeline did not -> diverge."""
        d = self.expected
        if self.following and d is not None and d.bot_sent and not self.sent_for_expected:
            self._diverge(ts, "refused")
        self.expected = None

    def _diverge(self, ts: int, today: str) -> None:
        d = self.expected
        bot = "nothing sent" if d is None or d.bot_sent is None else sent_text(d.bot_sent)
        self.divergence = Divergence(d.label if d else "?", ts, bot, today)
        self.following = False
        groups: dict[str, list[str]] = {}
        for cid, s in self.stand_ins.items():  # what still works moves to the simulator
            if s.working and s.remaining > EPS and s.command.symbol in self.sim.index:
                self.sim.submit(replace(s.command, qty=s.remaining, siblings=(), ts=ts))
                if s.command.oco_group:
                    groups.setdefault(s.command.oco_group, []).append(cid)
        for pair in groups.values():
            if len(pair) == 2:
                self.sim.link_oco(*pair)
        self.sim.drain_events()  # the mirror has them as working already

    def _same(self, side: int, qty: float) -> bool:
        d = self.expected
        return bool(d and d.bot_sent and d.bot_sent[0] == side and abs(d.bot_sent[1] - qty) < 1e-9)

    # ---- Broker port v2 -------------------------------------------------------------------
    def submit(self, command: SubmitOrder) -> None:
        if not self.following:
            self.sim.submit(command)
            return
        if not command.is_protective:
            if self.expected is not None:
                self.sent_for_expected = True
                if self.expected.order_id:
                    self.cycle_of_order[self.expected.order_id] = command.trade_cycle_id
            if self._same(int(command.side), command.qty):
                if self.expected is not None and self.expected.order_id:
                    self.core_of_bot[self.expected.order_id] = command.client_order_id
            else:
                self._diverge(command.ts, sent_text((int(command.side), command.qty)))
                self.sim.submit(command)
                return
        for cmd in command:  # the bot's own order (or its legs) stands for it
            self.stand_ins[cmd.client_order_id] = StandIn(cmd)
            self._events.append(OrderUpdate(U.ACCEPTED, cmd.client_order_id, cmd.ts, cmd.ts))

    def cancel(self, command: CancelOrder) -> None:
        s = self.stand_ins.get(command.client_order_id)
        if s is None or not self.following:
            self.sim.cancel(command)
        elif s.working:
            s.working = False
            self._events.append(
                OrderUpdate(
                    U.CANCELED, command.client_order_id, command.ts, command.ts,
                    reasons=command.reasons,
                )
            )  # fmt: skip

    def amend(self, command: AmendOrder) -> None:
        s = self.stand_ins.get(command.client_order_id)
        if s is None or not self.following:
            self.sim.amend(command)
            return
        if not s.working:
            return
        c = s.command
        s.command = replace(
            c,
            qty=max(command.qty, s.filled) if command.qty is not None else c.qty,
            stop_price=c.stop_price if command.stop_price is None else command.stop_price,
            limit_price=c.limit_price if command.limit_price is None else command.limit_price,
        )
        self._events.append(
            OrderUpdate(
                U.REPLACED, c.client_order_id, command.ts, command.ts, reasons=command.reasons,
                qty=s.command.qty, stop_price=s.command.stop_price,
                limit_price=s.command.limit_price,
            )
        )  # fmt: skip

    def account(self) -> Account:
        return self.sim.account()

    def positions(self) -> list[BrokerPosition]:
        if not self.following:
            return self.sim.positions()
        return [BrokerPosition(s, q, float("nan")) for s, q in sorted(self.actual.items()) if q]

    def open_orders(self) -> list[BrokerOrder]:
        if not self.following:
            return self.sim.open_orders()
        return [self._report(s) for s in self.stand_ins.values() if s.working]

    def order(self, client_order_id: str) -> BrokerOrder | None:
        s = self.stand_ins.get(client_order_id)
        if s is not None and (self.following or client_order_id not in self.sim.by_cid):
            return self._report(s)
        return self.sim.order(client_order_id)

    def recent_fills(self, since_ns: int) -> list[Execution]:
        return self.sim.recent_fills(since_ns)

    def last_price(self, symbol: str) -> float:
        return self.sim.last_price(symbol)

    def drain_events(self) -> list[BrokerEvent]:
        out, self._events = self._events, []
        for e in self.sim.drain_events():
            out.append(e)
            if isinstance(e, Execution):
                self.booked.append(
                    BookedFill(
                        e.ts_event, e.symbol, int(e.side), e.qty, e.price, e.fee, SIMULATED,
                        str(self.sim.by_cid[e.client_order_id]),
                    )
                )  # fmt: skip
        return out

    def on_bar(self, i, ts, symbol, open_, high, low, volume, session, react=None) -> None:  # type: ignore[no-untyped-def]
        """Deliver the recorded fills up to the bar; once diverged, the simulator matches it."""
        self.advance(ts)
        if not self.following:
            self.sim.on_bar(i, ts, symbol, open_, high, low, volume, session, react=react)

    @staticmethod
    def _report(s: StandIn) -> BrokerOrder:
        c = s.command
        status = OrderStatus.ACCEPTED if s.filled <= 0 else OrderStatus.PARTIALLY_FILLED
        if not s.working:
            status = OrderStatus.FILLED if s.remaining <= EPS else OrderStatus.CANCELED
        return BrokerOrder(
            c.client_order_id, c.client_order_id, c.symbol, c.side, c.qty, s.filled, status,
            c.order_type, c.tif, c.limit_price, c.stop_price, c.parent_id,
        )  # fmt: skip
