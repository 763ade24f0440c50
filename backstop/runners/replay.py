"""``backstop replay``: load an incident, re-run it through today's guardrails, report.

PATH is a scenario folder (``incident.toml`` + inputs, optionally ``expect.toml``) or a
single log file. The profile is ``--profile``, else the scenario's ``expect.toml`` profile,
else ``post-incident``. Exit codes: 0 when every expectation holds (or there are none),
1 when one fails, 2 on bad input.

The re-run feeds the incident's decisions (``backstop.replay.decisions``) and advisories
through the same ``EventDriver`` and compiled kernels as a backtest or a live run, against a
``ReplayBroker`` seeded with the broker's position at the start. While today's pipeline
decides what the bot decided, the broker keeps the recorded fills (the world stays the one
that happened); at the first decision that differs it switches to the simulated exchange.
This is composition (the replay's records, the event driver and the simulated exchange), so
it lives here, above all three.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from backstop.brokers.sim.exchange import SimExchange
from backstop.domain.enums import OrderRole
from backstop.engine.broker import EntryRequest, ExitRequest, FillEvent, fill_record
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.event_driver import EventDriver
from backstop.engine.inputs import BarArrays, instrument_arrays
from backstop.engine.prepare import guard_for
from backstop.engine.profile import RiskProfile
from backstop.replay.decisions import Decision, decisions_of
from backstop.replay.events import BrokerFill, BrokerOrder
from backstop.replay.expect import Expectations, check_expectations, load_expectations
from backstop.replay.load import load_incident
from backstop.replay.outcome import Outcome, outcome_of
from backstop.replay.rerun import (
    RECORDED,
    SIMULATED,
    BookedFill,
    Divergence,
    Rerun,
    decision_events,
    instruments_of,
    price_bars,
    seed_positions,
    sent_text,
    start_equity,
    start_positions,
    verdict_frame,
)
from backstop.replay.timeline import Incident
from backstop.runners.drive import Cursor, drive

DEFAULT_PROFILE = "post-incident"


@dataclass
class ReplayRun:
    """A replay and the verdict on its scenario's expectations."""

    outcome: Outcome
    expectations: Expectations | None
    failures: list[str]


def replay(path: str | Path, profile: str | None = None, mode: str = "safe") -> ReplayRun:
    """Replay PATH under ``profile`` (a preset or a TOML file) and check its expectations."""
    path = Path(path)
    exp = None
    if path.is_dir() and (path / "expect.toml").exists():
        exp = load_expectations(path / "expect.toml")
    chosen = profile or (exp.profile if exp else None) or DEFAULT_PROFILE
    with gc_paused():
        incident = load_incident(path, mode=mode)  # type: ignore[arg-type]
        outcome = outcome_of(incident, rerun(incident, RiskProfile.load(chosen)))
    failures = check_expectations(outcome, exp) if exp and profile in (None, exp.profile) else []
    return ReplayRun(outcome, exp, failures)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a timeline is built.

    A 100,000-line log becomes ~80,000 small event records and their dicts; the collector,
    triggered by allocation counts, re-scans all of them again and again (a third of the
    replay's time in bench/bench_replay.py). They hold no reference cycles, so nothing is
    lost by collecting once afterwards instead.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ReplayBroker(SimExchange):
    """A Broker that follows the recorded broker until today's decisions differ, then
    simulates. ``position``/``open_orders`` answer from whichever world is current."""

    def __init__(self, symbols, inst, prm, fills, orders, start_pos) -> None:
        super().__init__(symbols, inst, prm)
        self.following = True
        self.recorded = sorted(fills, key=lambda f: f.ts)
        self.order_types = {o.order_id: (o.order_type or "", o.parent_id) for o in orders}
        self.next_fill = 0
        self.actual = dict(start_pos)
        self.booked: list[BookedFill] = []
        self.expected: Decision | None = None
        self.sent_for_expected = False
        self.divergence: Divergence | None = None
        self.cycle_of_order: dict[str, int] = {}
        self._pseudo = 0
        self._fill_seen = 0
        for s, qty in start_pos.items():
            self.book.xpos[self.index[s]] = qty

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
        s = self.index[f.symbol]
        before = self.actual.get(f.symbol, 0.0)
        after = before + f.side * f.qty
        self.actual[f.symbol] = after
        self.book.xpos[s] = after
        kind, parent = self.order_types.get(f.order_id or "", ("", None))
        role = OrderRole.ENTRY
        if abs(after) < abs(before) or before * after < 0:
            role = OrderRole.SIGNAL_EXIT
            if parent is not None:
                role = OrderRole.STOP_LOSS if "stop" in kind else OrderRole.TAKE_PROFIT
        rec = fill_record(
            fill_id=-1,
            order_id=-1,
            trade_cycle=self.cycle_of_order.get(f.order_id or "", -1),
            strategy=0,
            sym=s,
            side=f.side,
            role=int(role),
            qty=f.qty,
            price=f.price,
            fee=f.fee or 0.0,
            ts=f.ts,
            bar=-1,
        )
        self._events.append(
            FillEvent(f.ts, f.ts, -1, f.symbol, f.side, f.qty, f.price, f.fee or 0.0, rec)
        )
        self.booked.append(
            BookedFill(
                f.ts, f.symbol, f.side, f.qty, f.price, f.fee or 0.0, RECORDED, f.order_id or "?"
            )
        )

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
        self._fill_seen = int(self.book.ctr[1])

    def _same(self, side: int, qty: float) -> bool:
        d = self.expected
        return bool(d and d.bot_sent and d.bot_sent[0] == side and abs(d.bot_sent[1] - qty) < 1e-9)

    # ---- Broker protocol -----------------------------------------------------------------
    def position(self, symbol: str) -> float:
        return self.actual.get(symbol, 0.0) if self.following else super().position(symbol)

    def open_orders(self, symbol: str):
        return [] if self.following else super().open_orders(symbol)

    def submit_entry(self, request: EntryRequest) -> int:
        return self._submit(request, super().submit_entry)

    def submit_exit(self, request: ExitRequest) -> int:
        return self._submit(request, super().submit_exit)

    def _submit(self, request, send) -> int:
        if self.expected is not None:
            self.sent_for_expected = True
            if self.expected.order_id:
                self.cycle_of_order[self.expected.order_id] = request.trade_cycle
        if self.following and self._same(int(request.side), request.qty):
            self._pseudo -= 1
            return self._pseudo - 1  # the bot's own recorded order stands for it
        if self.following:
            self._diverge(request.ts, sent_text((int(request.side), request.qty)))
        return send(request)

    def on_bar(self, i, ts, symbol, open_, high, low, volume, session) -> None:
        self.advance(ts)
        if not self.following:
            super().on_bar(i, ts, symbol, open_, high, low, volume, session)

    def drain_events(self):
        events = super().drain_events()
        for e in events:
            if isinstance(e, FillEvent) and e.order_id >= 0:
                self.booked.append(
                    BookedFill(
                        e.ts_event,
                        e.symbol,
                        int(e.side),
                        e.qty,
                        e.price,
                        e.fee,
                        SIMULATED,
                        str(e.order_id),
                    )
                )
        return events


def rerun(incident: Incident, profile: RiskProfile) -> Rerun:
    """Feed the incident's decisions through today's pipeline (see the module doc)."""
    decisions = decisions_of(incident)
    symbols = tuple(sorted(set(incident.symbols) | {d.symbol for d in decisions}))
    specs = instruments_of(incident, symbols)
    bars = price_bars(incident, symbols).filter(pl.col("symbol").is_in(list(symbols)))
    index = {s: i for i, s in enumerate(symbols)}
    arrays = BarArrays(
        ts=bars["ts"].to_numpy().astype(np.int64),
        sym=np.array([index[s] for s in bars["symbol"]], dtype=np.int32),
        open=bars["open"].to_numpy().astype(np.float64),
        high=bars["high"].to_numpy().astype(np.float64),
        low=bars["low"].to_numpy().astype(np.float64),
        close=bars["close"].to_numpy().astype(np.float64),
        volume=bars["volume"].to_numpy().astype(np.float64),
        session=np.zeros(bars.height, dtype=np.int32),
        symbols=symbols,
    )
    inst, spec_tuple = instrument_arrays(symbols, specs)
    ctx = bar_context(bars, arrays, spec_tuple, profile)
    equity = start_equity(incident)
    config = BacktestConfig(initial_cash=equity)
    prm = config.sim_params()
    strategies = tuple(sorted({d.strategy_id for d in decisions} or {"bot"}))
    start = start_positions(incident, symbols)
    broker = ReplayBroker(
        symbols, inst, prm, incident.of(BrokerFill), incident.of(BrokerOrder), start
    )
    guard = guard_for(spec_tuple, strategies, profile, equity)
    driver = EventDriver(broker, symbols, inst, prm, equity, profile, guard, ctx)
    opening = seed_positions(driver.pf, start, index, arrays)  # where the broker stood
    events, owners = decision_events(incident, decisions, index, strategies, arrays.ts)
    rows: dict = {}

    def decide(j: int) -> None:
        _decide(driver, broker, events, owners, j, rows)

    cursor = drive(broker, driver, arrays, events, Cursor(), decide=decide)
    for j in range(cursor.events_done, len(events)):  # none: every event sits on a bar
        decide(j)
    broker.advance(np.iinfo(np.int64).max)
    driver.on_broker_events()
    verdicts = verdict_frame(driver, decisions, rows)
    marks = {symbols[s]: float(c) for s, c in enumerate(driver.pf.mark) if c == c}
    return Rerun(
        symbols,
        decisions,
        verdicts,
        broker.booked,
        broker.divergence,
        marks,
        specs,
        profile,
        bars,
        opening,
    )


def _decide(driver, broker, events, owners, j: int, rows: dict) -> None:
    """Decide event ``j``: the broker learns which bot decision it judges (and settles after
    it whether the bot sent an order today's pipeline did not)."""
    ev = events[j]
    decision = owners[j]
    if decision is not None:
        broker.expect(decision, int(ev["ts"]))
        before = int(driver.dec.ctr[3])
        driver.on_event(ev, j)
        rows[decision.label, decision.ts] = before
        broker.settle(int(ev["ts"]))
    else:
        broker.advance(int(ev["ts"]))
        driver.on_event(ev, j)
