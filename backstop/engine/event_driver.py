"""The event driver: the pipeline in Python, one event at a time, against any Broker.

This is the driver the live runner and incident replay will use, and a step-by-step backtest
mode for debugging. It calls the very same compiled decision and accounting functions as the
backtest loop; only the order of calls is Python. A parity test runs both drivers on the same
inputs and compares their journals row by row.

It reads the position and working orders from the broker (broker truth), never from its own
book, so the reduce-only exit guard works against what is really held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from backstop.domain.enums import EventKind, Intent, OrderRole, OrderStatus, OrderType, Side
from backstop.engine.broker import (
    Broker,
    EntryRequest,
    ExitRequest,
    FillEvent,
    OrderStatusEvent,
)
from backstop.engine.checkpoint import rebuild, struct_arrays
from backstop.engine.core.codes import (
    INTENT_EXIT,
    R_KILL_SWITCH_ACTIVE,
    R_KILL_SWITCH_FLATTEN,
    R_STOP_MOVED,
    REFUSING_MASK,
    ROLE_KILL_SWITCH,
)
from backstop.engine.core.decide import (
    commit_entry_nb,
    decide_exit_nb,
    decide_signal_nb,
    decide_stop_move_nb,
    new_market,
    record_stop_update_nb,
    record_verdict_nb,
    stop_update_decision_nb,
)
from backstop.engine.core.gates import book_wide_nb
from backstop.engine.core.guard import (
    Guard,
    _make_guard,
    grow_guard_events,
    guard_event_room_nb,
    note_order_nb,
    on_trade_closed_nb,
    start_day_nb,
    update_shadows_nb,
)
from backstop.engine.core.loop import engine_exit_event_nb
from backstop.engine.core.params import SimParams
from backstop.engine.core.portfolio import apply_fill_nb, equity_nb
from backstop.engine.core.records import (
    N_TRADES,
    RTI_ENTRY_TS,
    BarContext,
    Decisions,
    Instruments,
    Portfolio,
    _make_decisions,
    _make_portfolio,
    at_nb,
    grow_trades,
    grow_verdicts,
    new_decisions,
    new_portfolio,
)
from backstop.engine.core.supervise import (
    NEED_DAYS,
    NEED_EQUITY,
    NEED_EXITS,
    NEED_SHADOWS,
    account_checks_nb,
    apply_advisory_nb,
    apply_control_nb,
    exit_rule_nb,
    needs_nb,
    trip_kill_nb,
    value_of_kill_nb,
)
from backstop.engine.profile import RiskProfile
from backstop.errors import BackstopError

PLAIN_EXIT_ROLES = frozenset(
    role for role in OrderRole if role == OrderRole.SIGNAL_EXIT or role >= OrderRole.TIME_STOP
)


class EventDriver:
    """Signal -> pipeline -> Broker, broker fills -> portfolio, and the guardrails between.

    Mirrors the backtest loop call for call (``core/loop.py``): the same kernels decide, only
    the hands differ: orders go to ``broker`` and positions and working orders are read from
    it, never from a book of our own.
    """

    def __init__(
        self,
        broker: Broker,
        symbols: tuple[str, ...],
        inst: Instruments,
        prm: SimParams,
        initial_cash: float,
        profile: RiskProfile,
        guard: Guard,
        ctx: BarContext,
    ) -> None:
        self.broker = broker
        self.symbols = symbols
        self.inst = inst
        self.prm = prm
        self.rp = profile.array()
        self.flatten = bool(profile.get("kill.flatten"))
        self.needs = int(needs_nb(self.rp))
        self.ctx = ctx
        pf = new_portfolio(len(symbols), initial_cash, 256, inst.mult, inst.is_future)
        self._hold(guard, pf, new_decisions(256))

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

    # ---- durable state -------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, np.ndarray]]:
        """Copies of the driver's state (guardrails, portfolio, verdicts) for a Checkpoint.

        Taken between events, after ``on_broker_events``: nothing is in flight."""
        return {
            "guard": struct_arrays(self.g),
            "portfolio": struct_arrays(self.pf),
            "decisions": struct_arrays(self.dec),
        }

    def restore(self, parts: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Continue from a snapshot's state instead of the fresh state it was built with."""
        for name in ("guard", "portfolio", "decisions"):
            if name not in parts:
                raise BackstopError(f"checkpoint has no {name!r} state for the event driver")
        self._hold(
            rebuild(Guard, _make_guard, parts["guard"]),
            rebuild(Portfolio, _make_portfolio, parts["portfolio"]),
            rebuild(Decisions, _make_decisions, parts["decisions"]),
        )

    # ---- state from the broker -----------------------------------------------------------
    def _position(self, s: int) -> float:
        return float(self.broker.position(self.symbols[s]))

    def _positions(self) -> np.ndarray:
        return np.array([self.broker.position(sym) for sym in self.symbols], dtype=np.float64)

    def _pending(self) -> np.ndarray:
        """Signed unfilled quantity of the working entries of every symbol, per the broker."""
        out = np.zeros(len(self.symbols))
        for s, sym in enumerate(self.symbols):
            for o in self.broker.open_orders(sym):
                if o.role == OrderRole.ENTRY:
                    out[s] += int(o.side) * o.remaining
        return out

    def _working(self, s: int) -> tuple[int, int, float]:
        """(working entries, side of the last one, unfilled plain exits) of symbol ``s``."""
        entries, side, exits = 0, 0, 0.0
        for o in self.broker.open_orders(self.symbols[s]):
            if o.role == OrderRole.ENTRY:
                entries += 1
                side = int(o.side)
            elif o.role in PLAIN_EXIT_ROLES:
                exits += o.remaining
        return entries, side, exits

    def _equity(self) -> float:
        return float(equity_nb(self.pf))

    def _room(self) -> None:
        n_sym = len(self.symbols)
        grow_verdicts(self.dec, n_sym + 1)
        grow_trades(self.pf, n_sym + 2)
        grow_guard_events(self.g, self._guard_room)

    # ---- events --------------------------------------------------------------------------
    def on_broker_events(self) -> dict[int, int]:
        """Book every fill the broker reports; return {order id: reasons} of rejections."""
        rejected: dict[int, int] = {}
        for event in self.broker.drain_events():
            if isinstance(event, OrderStatusEvent) and event.status == OrderStatus.REJECTED:
                rejected[event.order_id] = event.reasons
            if isinstance(event, FillEvent):
                self._room()
                apply_fill_nb(self.pf, event.record)
        return rejected

    def on_bar(self, i: int, s: int, ts: int, high: float, low: float, close: float) -> None:
        """A bar closed (after the broker matched it): book fills, mark, then supervise."""
        self._room()
        t0 = int(self.pf.ctr[N_TRADES])
        self.on_broker_events()
        self.pf.mark[s] = close
        day = int(at_nb(self.ctx.day, i))
        if self.needs != NEED_DAYS or int(self.pf.ctr[N_TRADES]) != t0 or day > self.g.ai[0]:
            self._supervise(i, s, ts, high, low, t0, day)

    def _supervise(self, i: int, s: int, ts: int, high: float, low: float, t0: int, day: int):
        """``supervise_bar_nb`` of the backtest loop, acting through the Broker."""
        g, rp, pf = self.g, self.rp, self.pf
        for t in range(t0, int(pf.ctr[N_TRADES])):
            tr = pf.trades[t]
            equity = self._equity()
            cause = on_trade_closed_nb(
                g, rp, tr["strategy"], tr["sym"], tr["pnl"], equity, ts, i, tr["cycle"]
            )
            if trip_kill_nb(g, cause, ts, i, equity):
                self._kill_actions(ts, i)
        if day > g.ai[0]:
            start_day_nb(g, day, ts, i, self._equity())
        if self.needs & NEED_EQUITY:
            equity = self._equity()
            q = float(at_nb(self.ctx.quality, i))
            cause = account_checks_nb(g, rp, equity, q, ts, i)
            if trip_kill_nb(g, cause, ts, i, value_of_kill_nb(g, cause, equity, q)):
                self._kill_actions(ts, i)
        if self.needs & NEED_SHADOWS:
            update_shadows_nb(g, rp, s, high, low, ts, i)
        if self.needs & NEED_EXITS:
            role, reason = exit_rule_nb(
                g,
                rp,
                s,
                self._position(s),
                pf.avg[s],
                pf.mark[s],
                pf.rti[s, RTI_ENTRY_TS],
                ts,
                at_nb(self.ctx.close_ns, i),
                high,
                low,
            )
            if role != 0:
                self._engine_exit(s, int(role), int(reason), ts, i)

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
        quote = float(self.broker.last_price(self.symbols[s]))
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

    def _stop_leg(self, s: int) -> tuple[int, float, float]:
        """(id, level, unfilled quantity) of the symbol's oldest working stop leg, as the
        core picks it; (-1, nan, 0) when it has none."""
        for o in self.broker.open_orders(self.symbols[s]):
            if o.role in (OrderRole.STOP_LOSS, OrderRole.TRAILING):
                return o.order_id, o.stop_price, o.remaining
        return -1, np.nan, 0.0

    def _move_stop(self, s: int, leg: int, level: float, ts: int) -> None:
        del s
        self.broker.amend_stop(leg, level, ts, int(R_STOP_MOVED))

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
            self.rp,
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

    def _kill_actions(self, ts: int, bar: int) -> None:
        """Kill switch activation: cancel every working entry, then flatten per the policy."""
        for s, symbol in enumerate(self.symbols):
            for o in self.broker.open_orders(symbol):
                if o.role == OrderRole.ENTRY:
                    self.broker.cancel(o.order_id, ts, int(R_KILL_SWITCH_ACTIVE))
            if self.flatten:
                self._engine_exit(s, int(ROLE_KILL_SWITCH), int(R_KILL_SWITCH_FLATTEN), ts, bar)
        self.on_broker_events()

    def _engine_exit(self, s: int, role: int, reason: int, ts: int, bar: int) -> None:
        """An exit the exit manager or the kill switch asked for (``engine_exit_nb``)."""
        symbol = self.symbols[s]
        pos = self._position(s)
        if pos == 0.0:
            return
        _, _, exit_qty = self._working(s)
        ev = engine_exit_event_nb(self.g, self.pf, s, -1 if pos > 0 else 1, role, ts, bar)
        r, side, qty = decide_exit_nb(ev, pos, exit_qty, self.rp)
        if side == 0:
            return
        order = self.broker.submit_exit(
            ExitRequest(
                trade_cycle=int(ev["seq"]),
                strategy=int(ev["strategy"]),
                symbol=symbol,
                side=Side(int(side)),
                qty=float(qty),
                ts=ts,
                bar=bar,
                role=OrderRole(role),
                cancel_reasons=reason,
            )
        )
        note_order_nb(self.g, ts)
        self.on_broker_events()
        d = (reason | int(r), side, qty, self.pf.mark[s], np.nan, np.nan, 0.0, np.nan, np.nan)
        g = self.g
        record_verdict_nb(self.dec, ev, -1, True, d, pos, np.nan, order, g, self.rp)

    def _send(self, ev: np.void, symbol: str, d: tuple) -> int:
        """Turn an approved decision into the Broker call for its intent."""
        common: dict[str, Any] = {
            "trade_cycle": int(ev["seq"]),
            "strategy": int(ev["strategy"]),
            "symbol": symbol,
            "side": Side(int(d[1])),
            "qty": float(d[2]),
            "ts": int(ev["ts"]),
            "bar": int(ev["bar"]),
        }
        if int(ev["intent"]) == INTENT_EXIT:
            return self.broker.submit_exit(
                ExitRequest(**common, role=OrderRole(int(ev["exit_role"])))
            )
        return self.broker.submit_entry(
            EntryRequest(
                **common,
                order_type=OrderType(int(ev["otype"])),
                tif=int(ev["tif"]),
                limit_price=float(ev["limit_px"]),
                entry_stop_price=float(ev["entry_stop_px"]),
                stop_price=float(ev["stop_px"]),
                target_price=float(d[5]),
                stop_pct=float(ev["stop_pct"]),
                target_pct=float(d[6]),
                trail_pct=float(ev["trail_pct"]),
                scale_in_pct=float(ev["scale_in_pct"]),
                price=float(d[3]),
            )
        )
