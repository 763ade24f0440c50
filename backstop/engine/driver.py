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

from collections.abc import Mapping
from typing import Any

import numpy as np

from backstop.domain.commands import CancelOrder, OrderCommand, SubmitOrder
from backstop.domain.enums import OrderRole, OrderType, Side, TimeInForce
from backstop.domain.events import Execution, OrderUpdate, OrderUpdateKind
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
from backstop.engine.core.records import FILL_DTYPE, N_TRADES, BarContext, Instruments, at_nb
from backstop.engine.core.supervise import NEED_DAYS
from backstop.engine.driver_records import from_text_array, order_records, text_array
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
        self._t0 = 0
        self._draining = False

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
                self.port.cancel(cmd)
            else:
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
            events = self.port.drain_events()
            if not events:
                return rejected
            for event in events:
                if not self.mirror.apply(event):
                    continue
                o = self.mirror.orders[event.client_order_id]
                if isinstance(event, Execution):
                    self._book(o, event)
                    self._dispatch(self.brackets.on_execution(self.mirror, event))
                elif isinstance(event, OrderUpdate) and event.kind == OrderUpdateKind.REJECTED:
                    rejected[o.order_no] = event.reasons
        raise BackstopError(f"broker events did not settle after {MAX_ROUNDS} rounds")

    def _book(self, o: Any, ex: Execution) -> None:
        """Book an execution into the portfolio (the core's fill record)."""
        self._room()
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
            bar=self.bar,
            slippage=ex.slippage,
            alt_prices=ex.alt_prices,
        )
        self.fills.append(rec)
        apply_fill_nb(self.pf, rec)

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
    def fill_records(self) -> np.ndarray:
        """Every execution the driver booked, as the core's fill records."""
        if not self.fills:
            return np.zeros(0, dtype=FILL_DTYPE)
        return np.array(self.fills, dtype=FILL_DTYPE)

    def order_records(self) -> np.ndarray:
        """Every order the driver sent, as ORDER_DTYPE rows (``driver_records``)."""
        return order_records(self.mirror, self.index)

    # ---- durable state ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, np.ndarray]]:
        """The pipeline's state structs plus the mirror, the bracket plans and the booked
        fills: everything this driver knows that the broker does not."""
        parts = super().snapshot()
        parts["port"] = {
            "mirror": text_array(self.mirror.to_dict()),
            "brackets": text_array(self.brackets.to_dict()),
            "fills": self.fill_records(),
            "bar": np.array([self.bar, self._t0], dtype=np.int64),
        }
        return parts

    def restore(self, parts: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        super().restore(parts)
        if "port" not in parts:
            raise BackstopError("checkpoint has no 'port' state (mirror, brackets) for the driver")
        port = parts["port"]
        self.mirror = BrokerMirror.from_dict(from_text_array(port["mirror"]))
        self.brackets.restore(from_text_array(port["brackets"]))
        self.fills = list(np.array(port["fills"], dtype=FILL_DTYPE))
        self.bar, self._t0 = (int(x) for x in port["bar"])
