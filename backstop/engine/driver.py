"""PortDriver: the event driver, commands out and broker events in, against any BrokerPort.

This is the driver the live runner, the step-by-step backtest and the replay re-run use. It
calls the very same compiled decision and accounting kernels as the backtest loop
(``core/loop.py``) in the same order; only the hands differ. It

- reads positions and working orders from its ``BrokerMirror``, which it projects from its
  own commands and the broker's events (through the order state machine), never from a
  venue's book;
- turns approved decisions into order commands through the ``BracketManager`` and sends
  them (``submit``/``cancel``/``amend``), recording each submit in the mirror first;
- books every new execution into the portfolio and lets the bracket manager answer it
  (protection for entry fills, OCO and remainder cancels, reduce-only fitting), until the
  broker has nothing more to say;
- keeps its own records (orders from the mirror, fills it booked, verdicts, trades), which
  the journal is written from (``driver_records``).

Supervision after a bar (kill switch, exit rules) is ``driver_guard``. A parity
test runs it over the simulated exchange and over a fake that implements only the port, and
holds both to the backtest loop's records row by row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from backstop.domain.commands import CancelOrder, OrderCommand, SubmitOrder
from backstop.domain.enums import (
    EventKind,
    Intent,
    OrderRole,
    OrderType,
    ReasonCode,
    Side,
    TimeInForce,
)
from backstop.domain.events import BrokerEvent, Execution, OrderUpdate, OrderUpdateKind
from backstop.engine import driver_guard, driver_records
from backstop.engine.brackets import BracketManager, EntryPlan, Venue
from backstop.engine.broker import BrokerPort, fill_record
from backstop.engine.core.codes import INTENT_EXIT, R_STOP_MOVED, REFUSING_MASK
from backstop.engine.core.decide import (
    commit_entry_nb,
    decide_signal_nb,
    decide_stop_move_nb,
    new_market,
    record_stop_update_nb,
    record_verdict_nb,
    stop_update_decision_nb,
)
from backstop.engine.core.execution import note_entry_fill_nb
from backstop.engine.core.gates import book_wide_nb
from backstop.engine.core.guard import (
    Guard,
    grow_guard_events,
    guard_event_room_nb,
    note_order_nb,
)
from backstop.engine.core.params import SimParams
from backstop.engine.core.portfolio import apply_fill_nb, equity_nb
from backstop.engine.core.records import (
    FILL_DTYPE,
    N_TRADES,
    BarContext,
    Decisions,
    Instruments,
    Portfolio,
    at_nb,
    grow_trades,
    grow_verdicts,
    new_decisions,
    new_portfolio,
)
from backstop.engine.core.riskslots import N_RISK
from backstop.engine.core.supervise import (
    NEED_DAYS,
    apply_advisory_nb,
    apply_control_nb,
    needs_nb,
    trip_kill_nb,
)
from backstop.engine.mirror import BrokerMirror
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError

log = logging.getLogger("backstop.driver")
BROKER_REJECTED_BIT = 1 << int(ReasonCode.BROKER_REJECTED)
MAX_ROUNDS = 10_000  # event/command rounds one reaction may take: a loop is a bug, not a wait
PLAIN_EXIT_ROLES = frozenset(
    role for role in OrderRole if role == OrderRole.SIGNAL_EXIT or role >= OrderRole.TIME_STOP
)


class PortDriver:
    """Signal -> pipeline -> order commands, broker events -> mirror and portfolio, and the
    guardrails between (see the module doc)."""

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
        strategies: tuple[str, ...] = (),
    ) -> None:
        self.port = broker
        self.symbols = symbols
        self.inst = inst
        self.prm = prm
        self.rp = profile.array(strategies)  # with per-strategy blocks, see strategy_rp
        self.flatten = bool(profile.get("kill.flatten"))
        self.needs = int(needs_nb(self.rp))
        self.ctx = ctx
        self.index = {s: k for k, s in enumerate(symbols)}
        self.mirror = BrokerMirror()
        self.done_orders: dict[str, str] = {}  # finished orders' saved text (driver_records)
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
        self.bar_decided = False
        self._held: list[BrokerEvent] = []
        pf = new_portfolio(len(symbols), initial_cash, 256, inst.mult, inst.is_future)
        self._hold(guard, pf, new_decisions(256))

    def strategy_rp(self, k: int) -> np.ndarray:
        """The profile block judging strategy ``k``'s signals (``gates.strategy_rp_nb``)."""
        n = N_RISK
        return self.rp[n * (k + 1) : n * (k + 2)] if len(self.rp) >= n * (k + 2) else self.rp

    def _hold(self, guard: Guard, pf: Portfolio, dec: Decisions) -> None:
        """Take these state structs as the driver's state (new, or restored)."""
        n = len(self.symbols)
        self.g = guard
        self.pf = pf
        self.dec = dec
        self._guard_room = int(guard_event_room_nb(int(guard.si.shape[0]), n))
        self._mkt = new_market(
            np.zeros(n),
            np.zeros(n),
            np.full(n, np.nan),
            self.pf.avg,
            self.inst.tick,
            self.inst.lot,
            self.inst.mult,
        )

    # ---- state from the mirror -------------------------------------------------------------
    def _position(self, s: int) -> float:
        """Signed quantity held of symbol ``s``, as the mirror knows it."""
        return self.mirror.position(self.symbols[s])

    def _positions(self) -> np.ndarray:
        """Every symbol's signed quantity held, as the mirror knows it."""
        return np.array([self.mirror.position(s) for s in self.symbols], dtype=np.float64)

    def _pending(self) -> np.ndarray:
        """Signed unfilled quantity of the working entries of every symbol."""
        out = np.zeros(len(self.symbols))
        for o in self.mirror.working():
            if o.role == OrderRole.ENTRY:
                out[self.index[o.symbol]] += o.side * o.remaining
        return out

    def _working(self, s: int) -> tuple[int, int, float]:
        """(working entries, side of the last one, unfilled plain exits) of symbol ``s``."""
        entries, side, exits = 0, 0, 0.0
        for o in self.mirror.working(self.symbols[s]):
            if o.role == OrderRole.ENTRY:
                entries += 1
                side = o.side
            elif o.role in PLAIN_EXIT_ROLES:
                exits += o.remaining
        return entries, side, exits

    def _stop_leg(self, s: int) -> tuple[int, float, float]:
        """(order number, level, unfilled quantity) of the symbol's oldest working stop leg;
        (-1, nan, 0) when it has none."""
        leg = self.brackets.stop_leg(self.mirror, self.symbols[s])
        if leg is None:
            return -1, np.nan, 0.0
        return leg.order_no, leg.stop_price, leg.remaining

    def _move_stop(self, s: int, leg: int, level: float, ts: int) -> None:
        """Amend the symbol's oldest working stop leg to ``level``."""
        del leg
        cmd = self.brackets.stop_move(self.mirror, self.symbols[s], level, ts, int(R_STOP_MOVED))
        if cmd is not None:
            self._dispatch([cmd])

    def _equity(self) -> float:
        return float(equity_nb(self.pf))

    def _room(self) -> None:
        n_sym = len(self.symbols)
        grow_verdicts(self.dec, n_sym + 1)
        grow_trades(self.pf, n_sym + 2)
        grow_guard_events(self.g, self._guard_room)

    # ---- supervision (driver_guard) ---------------------------------------------------------
    def _supervise(
        self, i: int, s: int, ts: int, high: float, low: float, t0: int, day: int
    ) -> None:
        driver_guard.supervise(self, i, s, ts, high, low, t0, day)

    def _kill_actions(self, ts: int, bar: int) -> None:
        driver_guard.kill_actions(self, ts, bar)

    def _engine_exit(self, s: int, role: int, reason: int, ts: int, bar: int) -> None:
        driver_guard.engine_exit(self, s, role, reason, ts, bar)

    # ---- events ----------------------------------------------------------------------------
    def on_event(self, ev: np.void, row: int) -> None:
        """One event: a control changes state, an advisory is remembered, a signal decided."""
        self._room()
        kind = int(ev["kind"])
        if kind == EventKind.CONTROL:
            cause = apply_control_nb(self.g, self.rp, ev)
            if cause != 0 and trip_kill_nb(
                self.g, cause, int(ev["ts"]), int(ev["bar"]), self._equity()
            ):
                self._kill_actions(int(ev["ts"]), int(ev["bar"]))
        elif kind == EventKind.ADVISORY:
            apply_advisory_nb(self.g, ev)
        elif kind == EventKind.STOP_UPDATE:
            self.on_stop_update(ev, row)
        else:
            self.on_signal(ev, row)
        self.on_broker_events()

    def _marks(self, ev: np.void) -> np.ndarray:
        """Last prices for the decision: the bars' marks, with the broker's quote for a
        symbol that has none yet when the signal names no price (the sizer's last resort)."""
        marks = self.pf.mark
        s = int(ev["sym"])
        if s < 0 or marks[s] == marks[s] or ev["price"] == ev["price"]:
            return marks
        quote = float(self.port.last_price(self.symbols[s]))
        if not (quote > 0.0 and np.isfinite(quote)):
            return marks
        marks = marks.copy()  # the portfolio keeps marking at bars only
        marks[s] = quote
        return marks

    def on_stop_update(self, ev: np.void, row: int) -> None:
        """Move the position's stop leg at the broker when the strategy's level tightens it
        (``handle_stop_update_nb``); journal the verdict either way."""
        s = int(ev["sym"])
        pos, leg, stop_now, left, tick = 0.0, -1, np.nan, 0.0, 0.0
        if s >= 0:
            pos = self._position(s)
            tick = float(self.inst.tick[s])
            leg, stop_now, left = self._stop_leg(s)
        reasons, level = decide_stop_move_nb(ev, pos, stop_now, tick)
        approved = int(reasons) == int(R_STOP_MOVED)
        if approved:
            self._move_stop(s, leg, float(level), int(ev["ts"]))
        d = stop_update_decision_nb(reasons, pos, level, left)
        record_stop_update_nb(self.dec, ev, row, d, pos, self._equity(), leg, self.g, self.rp)

    def on_signal(self, ev: np.void, row: int) -> None:
        """Decide one signal and send what the verdict approves; journal the verdict."""
        inst = self.inst
        equity = self._equity()
        s = int(ev["sym"])
        pos, entries, entry_side, exit_qty = 0.0, 0, 0, 0.0
        positions = self._positions()
        if s >= 0:
            pos = float(positions[s])  # broker truth, not our own book
            entries, entry_side, exit_qty = self._working(s)
        # one Market over buffers refreshed in place: building a StructRef from Python costs
        # more than the decision itself
        mkt = self._mkt
        mkt.pos[:] = positions
        mkt.mark[:] = self._marks(ev)
        if int(ev["intent"]) != Intent.EXIT and book_wide_nb(self.rp):
            mkt.pending[:] = self._pending()
        b = int(ev["bar"])
        d = decide_signal_nb(
            self.g,
            self.strategy_rp(int(ev["strategy"])),
            ev,
            mkt,
            entries,
            entry_side,
            exit_qty,
            equity,
            at_nb(self.ctx.in_hours, b),
            at_nb(self.ctx.quality, b),
        )
        reasons = int(d[0])
        approved = (reasons & REFUSING_MASK) == 0
        order = -1
        if approved:
            order = self._send(ev, self.symbols[s], d)
            if int(ev["intent"]) == INTENT_EXIT:
                note_order_nb(self.g, int(ev["ts"]))
            else:
                qty = float(d[2])
                dist = float(d[7]) / (qty * inst.mult[s]) if qty > 0 else np.nan
                commit_entry_nb(self.g, ev, qty, float(d[3]), float(inst.mult[s]), dist)
            rejected = self.on_broker_events()
            if order in rejected:
                approved = False
                reasons |= rejected[order]
        d = (reasons, *d[1:])
        g = self.g
        record_verdict_nb(self.dec, ev, row, approved, d, pos, equity, order, g, self.rp)

    # ---- commands out ------------------------------------------------------------------------
    def send(self, commands: list[OrderCommand]) -> None:
        """Send commands the core made outside a decision or a fill (a live reconcile that
        re-protects a position from its plan): recorded in the mirror, then sent."""
        self._dispatch(commands)

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
                    # a refusal is never reasonless: the broker's own words go to the log
                    rejected[o.order_no] = event.reasons or BROKER_REJECTED_BIT
                    if event.message:
                        log.warning("%s rejected by the broker: %s", o.client_order_id,
                                    event.message)  # fmt: skip
        raise BackstopError(f"broker events did not settle after {MAX_ROUNDS} rounds")

    def _routed(self, events: list[BrokerEvent]) -> list[BrokerEvent]:
        """The events to apply now: all of them, or only ``route_symbol``'s while it is set
        (the rest wait in ``_held``, in order). A live runner that hears several symbols'
        fills at one bar time books each at its own symbol's bar, as the backtest does."""
        if self.route_symbol is None and self.hold_after is None:
            self._held = []
            return events
        now: list[BrokerEvent] = []
        self._held = []
        for event in events:
            o = self.mirror.orders.get(event.client_order_id)
            symbol = event.symbol if isinstance(event, Execution) else (o and o.symbol)
            later = self.hold_after is not None and (
                event.ts_event > self.hold_after
                or (
                    # a recovered status change stamped at this very bar was most likely the
                    # answer to a command decided at it: it waits until the bar is decided,
                    # so that command is sent again and its reasons are known
                    event.ts_event == self.hold_after
                    and isinstance(event, OrderUpdate)
                    and not self.bar_decided
                )
            )
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
            slippage=ex.slippage,
            alt_prices=ex.alt_prices,
        )
        self.fills.append(rec)
        apply_fill_nb(self.pf, rec)
        note_entry_fill_nb(self.g, self.rp, rec)
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
    def fill_records(self) -> np.ndarray:
        """Every execution the driver booked, as the core's fill records."""
        if not self.fills:
            return np.zeros(0, dtype=FILL_DTYPE)
        return np.array(self.fills, dtype=FILL_DTYPE)

    def order_records(self) -> np.ndarray:
        """Every order the driver sent, as ORDER_DTYPE rows (``driver_records``)."""
        return driver_records.order_records(self.mirror, self.index)

    # ---- durable state ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, np.ndarray]]:
        """The pipeline's state structs plus the mirror, the bracket plans and the booked
        fills: everything this driver knows that the broker does not."""
        return driver_records.snapshot(self)

    def restore(self, parts: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Continue from a snapshot's state instead of the fresh state it was built with."""
        driver_records.restore(self, parts)
