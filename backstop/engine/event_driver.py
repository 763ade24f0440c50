"""The event driver: the pipeline in Python, one event at a time, against any Broker.

This is the driver the live runner and incident replay will use, and a step-by-step backtest
mode for debugging. It calls the very same compiled decision and accounting functions as the
backtest loop; only the order of calls is Python. A parity test runs both drivers on the same
inputs and compares their journals row by row.

It reads the position and working orders from the broker (broker truth), never from its own
book, so the reduce-only exit guard works against what is really held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from backstop.data import load_bars_frame
from backstop.engine.backtest import PreparedBars, guard_for, make_run_id
from backstop.engine.broker import (
    Broker,
    EntryRequest,
    ExitRequest,
    FillEvent,
    OrderStatusEvent,
)
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
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
    Instruments,
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
from backstop.engine.enums import EventKind, Intent, OrderRole, OrderStatus, OrderType, Side
from backstop.engine.inputs import event_array, instrument_arrays, session_days
from backstop.engine.instruments import Instrument
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult, RunRecords
from backstop.engine.run_warnings import text_id_refs
from backstop.strategies.base import conform_intents

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
        self.g = guard
        self.ctx = ctx
        self.pf = new_portfolio(len(symbols), initial_cash, 256, inst.mult, inst.is_future)
        n = len(symbols)
        self._guard_room = int(guard_event_room_nb(int(guard.si.shape[0]), n))
        self._mkt = new_market(
            np.zeros(n),
            np.zeros(n),
            np.full(n, np.nan),
            self.pf.avg,
            inst.tick,
            inst.lot,
            inst.mult,
        )
        self.dec = new_decisions(256)

    # ---- state from the broker -----------------------------------------------------------
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
                self.broker.position(self.symbols[s]),
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
            symbol = self.symbols[s]
            pos = self.broker.position(symbol)
            tick = float(self.inst.tick[s])
            for o in self.broker.open_orders(symbol):  # the oldest stop leg, as the core picks
                if o.role in (OrderRole.STOP_LOSS, OrderRole.TRAILING):
                    leg, stop_now, left = o.order_id, o.stop_price, o.remaining
                    break
        reasons, level = decide_stop_move_nb(ev, pos, stop_now, tick)
        approved = int(reasons) == int(R_STOP_MOVED)
        if approved:
            self.broker.amend_stop(leg, float(level), int(ev["ts"]), int(R_STOP_MOVED))
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
        pos = self.broker.position(symbol)
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
        common = {
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


def run_event_driven(
    bars: pl.DataFrame | PreparedBars,
    intents: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    instruments: dict[str, Instrument] | None = None,
    label: str = "intents",
    profile: RiskProfile | None = None,
    broker_factory: Callable[..., Any] | None = None,
) -> BacktestResult:
    """Step-by-step backtest: Python per bar through the Broker protocol (debugging mode).

    Same inputs as ``run_backtest``, same journal; slower by design, since it is the path a
    live runner takes one event at a time. ``broker_factory(symbols, inst, prm)`` swaps the
    simulated exchange for another Broker that also simulates bars (``on_bar`` and ``book``).
    """
    from backstop.brokers.sim.exchange import SimExchange

    t0 = time.perf_counter()
    config = config or BacktestConfig()
    prepared = bars if isinstance(bars, PreparedBars) else PreparedBars.of(load_bars_frame(bars))
    intents = conform_intents(intents)
    a = prepared.arrays
    session = a.session
    if (
        config.max_participation > 0
        or intents.filter((pl.col("tif") == 0) & (pl.col("otype") != 0)).height
    ):
        session = session_days(prepared.bars, config.session_tz)
    profile = profile or RiskProfile()
    refs = text_id_refs(intents, profile)
    inst, specs = instrument_arrays(a.symbols, instruments)
    events, strategies, event_symbols = event_array(intents, prepared.bars, a.symbols, a.sym)
    ctx = bar_context(prepared.bars, a, specs, profile)
    prm = config.sim_params()
    broker = (
        broker_factory(a.symbols, inst, prm)
        if broker_factory
        else SimExchange(a.symbols, inst, prm)
    )
    guard = guard_for(specs, strategies, profile, config.initial_cash)
    driver = EventDriver(broker, a.symbols, inst, prm, config.initial_cash, profile, guard, ctx)
    j = 0
    n_ev = len(events)
    for i in range(a.n):
        s = int(a.sym[i])
        broker.on_bar(
            i,
            int(a.ts[i]),
            a.symbols[s],
            float(a.open[i]),
            float(a.high[i]),
            float(a.low[i]),
            float(a.volume[i]),
            int(session[i]),
        )
        driver.on_bar(i, s, int(a.ts[i]), float(a.high[i]), float(a.low[i]), float(a.close[i]))
        while j < n_ev and int(events[j]["bar"]) == i:
            driver.on_event(events[j], j)
            j += 1
    book = broker.book
    records = RunRecords.take(book, driver.pf, driver.dec, driver.g)
    return BacktestResult(
        run_id=make_run_id(prepared.fingerprint, config, label, profile),
        config=config,
        profile=profile,
        bars=prepared.bars,
        arrays=a,
        instruments=specs,
        strategies=strategies,
        event_symbols=event_symbols,
        records=records,
        final_cash=float(driver.pf.acct[0]),
        run_seconds=time.perf_counter() - t0,
        label=label,
        source_refs=refs,
    )
