"""PortDriver: the event driver over Broker port v2, commands out and broker events in.

The decisions are the event driver's (the same compiled kernels as the backtest loop). What
differs is the hands: instead of asking a broker for its positions and orders and handing it
entry requests with bracket levels, this driver

- reads positions and working orders from its ``BrokerMirror``, which it projects from its
  own commands and the broker's events (through the order state machine);
- turns approved decisions into order commands through the ``BracketManager`` and sends
  them (``submit``/``cancel``/``amend``), recording each submit in the mirror first;
- books every new execution into the portfolio and lets the bracket manager answer it
  (protection for entry fills, OCO and remainder cancels, reduce-only fitting), until the
  broker has nothing more to say.

It is what the live runner drives, and what a parity test drives over a fake broker that
implements only the port: same inputs, same verdicts, fills and trades as the backtest loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backstop.domain.commands import CancelOrder, OrderCommand, SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side, TimeInForce
from backstop.domain.events import BrokerEvent, Execution, OrderUpdate, OrderUpdateKind
from backstop.domain.orders import parse_client_order_id
from backstop.engine.brackets import BracketManager, EntryPlan, Venue
from backstop.engine.broker import BrokerPort, fill_record
from backstop.engine.core.codes import (
    INTENT_EXIT,
    R_KILL_SWITCH_ACTIVE,
    R_KILL_SWITCH_FLATTEN,
    R_STOP_MOVED,
    ROLE_KILL_SWITCH,
)
from backstop.engine.core.decide import decide_exit_nb, record_verdict_nb
from backstop.engine.core.guard import Guard, note_order_nb
from backstop.engine.core.loop import engine_exit_event_nb
from backstop.engine.core.params import SimParams
from backstop.engine.core.portfolio import apply_fill_nb
from backstop.engine.core.records import (
    FILL_DTYPE,
    N_TRADES,
    ORDER_DTYPE,
    BarContext,
    Instruments,
    at_nb,
)
from backstop.engine.core.supervise import NEED_DAYS
from backstop.engine.event_driver import PLAIN_EXIT_ROLES, EventDriver
from backstop.engine.mirror import BrokerMirror
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError

MAX_ROUNDS = 10_000  # event/command rounds one reaction may take: a loop is a bug, not a wait


class PortDriver(EventDriver):
    """The event driver over a ``BrokerPort`` (see the module doc)."""

    def __init__(
        self,
        broker: BrokerPort,
        symbols: tuple[str, ...],
        inst: Instruments,
        prm: SimParams,
        initial_cash: float,
        profile: RiskProfile,
        guard: Guard,
        ctx: BarContext,
        *,
        run_id: str,
        venue: Venue | None = None,
    ) -> None:
        super().__init__(broker, symbols, inst, prm, initial_cash, profile, guard, ctx)  # type: ignore[arg-type]
        self.port = broker
        self.index = {s: k for k, s in enumerate(symbols)}
        self.mirror = BrokerMirror()
        self.brackets = BracketManager(
            run_id,
            dict(zip(symbols, inst.tick.tolist(), strict=True)),
            dict(zip(symbols, inst.lot.tolist(), strict=True)),
            venue or Venue(),
        )
        self.fills: list[np.void] = []
        self.bar = -1
        # live: the bar row a fill belongs to, from its symbol and time (None: the current bar)
        self.bar_of: Callable[[str, int], int] | None = None
        self._t0 = 0
        self._draining = False
        self.route_symbol: str | None = None
        # recovery after a restart: events stamped after this time wait for their bar
        self.hold_after: int | None = None
        self._held: list[BrokerEvent] = []

    # ---- state from the mirror -------------------------------------------------------------
    def _position(self, s: int) -> float:
        return self.mirror.position(self.symbols[s])

    def _positions(self) -> np.ndarray:
        return np.array([self.mirror.position(s) for s in self.symbols], dtype=np.float64)

    def _pending(self) -> np.ndarray:
        out = np.zeros(len(self.symbols))
        for o in self.mirror.working():
            if o.role == OrderRole.ENTRY:
                out[self.index[o.symbol]] += o.side * o.remaining
        return out

    def _working(self, s: int) -> tuple[int, int, float]:
        entries, side, exits = 0, 0, 0.0
        for o in self.mirror.working(self.symbols[s]):
            if o.role == OrderRole.ENTRY:
                entries += 1
                side = o.side
            elif o.role in PLAIN_EXIT_ROLES:
                exits += o.remaining
        return entries, side, exits

    def _stop_leg(self, s: int) -> tuple[int, float, float]:
        leg = self.brackets.stop_leg(self.mirror, self.symbols[s])
        if leg is None:
            return -1, np.nan, 0.0
        return leg.order_no, leg.stop_price, leg.remaining

    def _move_stop(self, s: int, leg: int, level: float, ts: int) -> None:
        del leg
        cmd = self.brackets.stop_move(self.mirror, self.symbols[s], level, ts, int(R_STOP_MOVED))
        if cmd is not None:
            self._dispatch([cmd])

    # ---- commands out ------------------------------------------------------------------------
    def _dispatch(self, commands: list[OrderCommand]) -> None:
        for cmd in commands:
            if isinstance(cmd, SubmitOrder):
                self.mirror.sent(cmd)
                self.port.submit(cmd)
            elif isinstance(cmd, CancelOrder):
                self.mirror.asked(cmd.client_order_id, cmd.reasons)
                self.port.cancel(cmd)
            else:
                self.mirror.asked(cmd.client_order_id, cmd.reasons)
                self.port.amend(cmd)

    def _send(self, ev: np.void, symbol: str, d: tuple) -> int:
        cycle, strategy = int(ev["seq"]), int(ev["strategy"])
        side, qty, ts, bar = Side(int(d[1])), float(d[2]), int(ev["ts"]), int(ev["bar"])
        if int(ev["intent"]) == INTENT_EXIT:
            cmds = self.brackets.exit(
                self.mirror, cycle=cycle, strategy=strategy, symbol=symbol, side=side, qty=qty,
                role=OrderRole(int(ev["exit_role"])), ts=ts, bar=bar,
            )  # fmt: skip
        else:
            plan = EntryPlan(
                cycle=cycle,
                strategy=strategy,
                symbol=symbol,
                side=side,
                qty=qty,
                order_type=OrderType(int(ev["otype"])),
                tif=TimeInForce(int(ev["tif"])),
                limit_price=float(ev["limit_px"]),
                entry_stop_price=float(ev["entry_stop_px"]),
                stop_price=float(ev["stop_px"]),
                target_price=float(d[5]),
                stop_pct=float(ev["stop_pct"]),
                target_pct=float(d[6]),
                trail_pct=float(ev["trail_pct"]),
                scale_in_pct=float(ev["scale_in_pct"]),
                ref_price=float(d[3]),
                ts=ts,
                bar=bar,
            )
            cmds = list(self.brackets.entry(plan))
        first = next(c for c in cmds if isinstance(c, SubmitOrder))
        self._dispatch(cmds)
        return self.mirror.orders[first.client_order_id].order_no

    def _kill_actions(self, ts: int, bar: int) -> None:
        for s in range(len(self.symbols)):
            cancels: list[OrderCommand] = [
                CancelOrder(o.client_order_id, ts, int(R_KILL_SWITCH_ACTIVE))
                for o in self.mirror.working(self.symbols[s])
                if o.role == OrderRole.ENTRY
            ]
            self._dispatch(cancels)
            if self.flatten:
                self._engine_exit(s, int(ROLE_KILL_SWITCH), int(R_KILL_SWITCH_FLATTEN), ts, bar)
        self.on_broker_events()

    def _engine_exit(self, s: int, role: int, reason: int, ts: int, bar: int) -> None:
        symbol = self.symbols[s]
        pos = self._position(s)
        if pos == 0.0:
            return
        _, _, exit_qty = self._working(s)
        ev = engine_exit_event_nb(self.g, self.pf, s, -1 if pos > 0 else 1, role, ts, bar)
        r, side, qty = decide_exit_nb(ev, pos, exit_qty, self.rp)
        if side == 0:
            return
        cmds = self.brackets.exit(
            self.mirror, cycle=int(ev["seq"]), strategy=int(ev["strategy"]), symbol=symbol,
            side=Side(int(side)), qty=float(qty), role=OrderRole(role), ts=ts, bar=bar,
            reasons=reason,
        )  # fmt: skip
        self._dispatch(cmds)
        order = self.mirror.orders[cmds[-1].client_order_id].order_no
        note_order_nb(self.g, ts)
        self.on_broker_events()
        d = (reason | int(r), side, qty, self.pf.mark[s], np.nan, np.nan, 0.0, np.nan, np.nan)
        record_verdict_nb(self.dec, ev, -1, True, d, pos, np.nan, order, self.g, self.rp)

    # ---- events in ---------------------------------------------------------------------------
    def on_broker_events(self) -> dict[int, int]:
        """Apply every event the broker has, answer each new fill; return {order: reasons}
        of rejections. Runs until the broker has nothing more to say."""
        rejected: dict[int, int] = {}
        if self._draining:  # a broker that reports while we answer: the outer loop drains it
            return rejected
        self._draining = True
        try:
            return self._drain(rejected)
        finally:
            self._draining = False

    def _drain(self, rejected: dict[int, int]) -> dict[int, int]:
        for _ in range(MAX_ROUNDS):
            events = self._routed(self._held + self.port.drain_events())
            if not events:
                return rejected
            for event in events:
                if not self.mirror.apply(event):
                    continue
                o = self.mirror.orders[event.client_order_id]
                if isinstance(event, Execution):
                    bar = self._book(o, event)
                    self._dispatch(self.brackets.on_execution(self.mirror, event, bar))
                elif isinstance(event, OrderUpdate) and event.kind == OrderUpdateKind.REJECTED:
                    rejected[o.order_no] = event.reasons
        raise BackstopError(f"broker events did not settle after {MAX_ROUNDS} rounds")

    def _routed(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        """The events to apply now: all of them, or only ``route_symbol``'s while it is set
        (the rest wait in ``_held``, in order). A live runner that hears several symbols'
        fills at one bar time books each at its own symbol's bar, as the backtest does."""
        if self.route_symbol is None and self.hold_after is None:
            self._held = []
            return events
        now, self._held = [], []
        for event in events:
            o = self.mirror.orders.get(event.client_order_id)
            symbol = event.symbol if isinstance(event, Execution) else (o and o.symbol)
            later = self.hold_after is not None and event.ts_event > self.hold_after
            other = self.route_symbol is not None and symbol not in (None, self.route_symbol)
            (self._held if later or other else now).append(event)
        return now

    def recover(self, events: list[BrokerEvent]) -> None:
        """Events a reconcile recovered (missed while the runner was down): they join the
        held events, in time order, and are applied when the session reaches their time."""
        self._held = sorted([*self._held, *events], key=lambda e: e.ts_event)  # stable

    @property
    def holding(self) -> bool:
        """Whether events wait for a later bar (a restarted session still catching up)."""
        return bool(self._held)

    def _book(self, o: Any, ex: Execution) -> int:
        """Book an execution into the portfolio (the core's fill record); return its bar."""
        self._room()
        bar = self.bar if self.bar_of is None else self.bar_of(o.symbol, ex.ts_event)
        rec = fill_record(
            fill_id=len(self.fills),
            order_id=o.order_no,
            trade_cycle=o.trade_cycle_id,
            strategy=o.strategy,
            sym=self.index[o.symbol],
            side=o.side,
            role=o.role,
            qty=ex.qty,
            price=ex.price,
            fee=ex.fee,
            ts=ex.ts_event,
            bar=bar,
        )
        self.fills.append(rec)
        apply_fill_nb(self.pf, rec)
        return bar

    def bar_started(self, i: int) -> None:
        """The venue is about to match bar ``i``: fills it reports belong to it."""
        self.bar = i
        self._t0 = int(self.pf.ctr[N_TRADES])

    def on_bar(self, i: int, s: int, ts: int, high: float, low: float, close: float) -> None:
        self._room()
        self.on_broker_events()
        self.pf.mark[s] = close
        day = int(at_nb(self.ctx.day, i))
        t0 = self._t0
        if self.needs != NEED_DAYS or int(self.pf.ctr[N_TRADES]) != t0 or day > self.g.ai[0]:
            self._supervise(i, s, ts, high, low, t0, day)

    # ---- records -------------------------------------------------------------------------------
    def order_records(self) -> np.ndarray:
        """The mirror's orders as the core's order records (what the journal's ``orders``
        table is written from), numbered in the order they were sent."""
        orders = list(self.mirror.orders.values())
        out = np.zeros(len(orders), dtype=ORDER_DTYPE)
        number = {o.client_order_id: o.order_no for o in orders}
        groups: dict[str, list[int]] = {}
        for o in orders:
            if o.oco_group:
                groups.setdefault(o.oco_group, []).append(o.order_no)
        for k, o in enumerate(orders):
            r = out[k]
            parts = parse_client_order_id(o.client_order_id)
            r["id"] = o.order_no
            r["cycle"] = o.trade_cycle_id
            r["strategy"] = o.strategy
            r["sym"] = self.index.get(o.symbol, -1)
            r["side"] = o.side
            r["otype"] = o.order_type
            r["tif"] = o.tif
            r["role"] = o.role
            r["status"] = o.status
            r["reduce_only"] = o.reduce_only
            r["leg_no"] = parts.leg_no if parts is not None else 0
            r["qty"] = o.qty
            r["filled"] = o.filled
            r["avg_fill"] = o.avg_fill
            r["limit_px"] = o.limit_price
            r["stop_px"] = o.stop_price
            r["trail_pct"] = 0.0 if o.trail_percent != o.trail_percent else o.trail_percent
            r["parent"] = number.get(o.parent_id, -1)
            others = [n for n in groups.get(o.oco_group, []) if n != o.order_no]
            r["sibling"] = others[0] if others else -1
            r["created_ts"] = o.sent_ts
            r["created_bar"] = o.sent_bar
            r["done_ts"] = o.done_ts
            r["reasons"] = o.reasons
        for name in ("leg_stop", "leg_target", "leg_stop_pct", "leg_target_pct", "water"):
            out[name] = np.nan
        for name in ("leg_sl", "leg_tp", "live_from", "live_session", "seen_bar"):
            out[name] = -1
        return out

    def fill_records(self) -> np.ndarray:
        if not self.fills:
            return np.zeros(0, dtype=FILL_DTYPE)
        return np.array(self.fills, dtype=FILL_DTYPE)
