"""LiveRunner: a live session driven by a bar feed, durable, journaled, killable.

One step per new bar time: take the feed's bars, let the session decide (orders go to the
broker through the port), then make it durable. The run directory holds

- ``runner.json``: the marker ``backstop kill`` looks for;
- ``state.ckpt``: the session's whole state, saved after every step that changed anything
  (a verdict, an order, a fill, a guard event) in one transaction that writes only what
  changed (``CheckpointStore``), so a runner killed at any instant restarts where its last
  durable step left it: restored, reconciled with the broker
  (what happened in between comes back as events, booked once), never re-deciding a signal;
- ``journal.duckdb``: the backtest's tables, rewritten atomically from that state at most
  once a second while running, at start-up and at the end, so ``backstop report``,
  ``explain`` and ``replay`` read a live run like any other. Nothing the state holds is
  lost with a killed journal write: the next one rewrites it whole.

The runner stops when the feed ends, when ``max_steps`` is reached, or after a kill from
outside (``backstop kill RUN_DIR``, SIGTERM/SIGUSR1) was acted on: entries cancelled,
positions flattened as the profile says, HALTED, journaled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from backstop.domain.enums import ControlAction, GuardEventKind, Intent
from backstop.engine.broker import BrokerPort
from backstop.engine.checkpoint import load_checkpoint
from backstop.engine.checkpoint_store import CheckpointStore
from backstop.engine.clock import Clock, LiveClock
from backstop.engine.core.guard import AI_N_EVENTS
from backstop.engine.core.records import N_VERDICTS
from backstop.engine.journal import write_journal
from backstop.runners.live.alerts import Alert, AlertKind, LogSink, Notifier, SignalsWithoutOrders
from backstop.runners.live.killswitch import KillSwitch, write_run_marker
from backstop.runners.live.protect import reprotect
from backstop.runners.live.reconcile import ReconcileReport, reconcile, trading_state
from backstop.runners.live.session import LiveSession

log = logging.getLogger("backstop.live")

STATE = "state.ckpt"
JOURNAL = "journal.duckdb"


class Mode(StrEnum):
    OBSERVE = "observe"  # decide and journal, send nothing
    PAPER = "paper"  # orders to a paper account
    LIVE = "live"  # orders to a real account


class Heartbeat(Protocol):
    """A broker connection's pulse: ``beat()`` is one round trip (a gateway that stopped
    answering is found dead there), ``controls()`` the CONNECTION_LOST / RESTORED
    transitions the adapter saw since the last call (fed to the pipeline as controls)."""

    def beat(self) -> None: ...

    def controls(self) -> list[ControlAction]: ...


class BarFeed(Protocol):
    """Where bars come from: the bars of the first bar time after ``after_ns`` (every
    symbol's bar at it), waiting for it if it has not closed yet; None when the feed has
    ended. A restarted runner asks again from its last durable bar, so a feed re-delivers
    bars it gave before."""

    def next_bars(self, after_ns: int) -> pl.DataFrame | None: ...


@dataclass
class StepCounts:
    verdicts: int = 0
    fills: int = 0
    orders: int = 0
    guard: int = 0
    mirror_changes: int = 0
    reconciles: int = 0


class LiveRunner:
    """See the module doc."""

    def __init__(
        self,
        session: LiveSession,
        broker: BrokerPort,
        feed: BarFeed,
        run_dir: str | Path,
        *,
        mode: Mode = Mode.PAPER,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        reconcile_every: int = 60,
        journal_every_s: float = 1.0,
        on_step: Callable[[LiveRunner], None] | None = None,
        heartbeat: Heartbeat | None = None,
        heartbeat_s: float = 5.0,
    ) -> None:
        self.session = session
        self.broker = broker
        self.feed = feed
        self.run_dir = Path(run_dir)
        self.mode = mode
        self.notifier = notifier or LogSink()
        self.clock = clock or LiveClock()
        self.reconcile_every = reconcile_every
        self.journal_every_s = journal_every_s
        self.on_step = on_step
        self.heartbeat = heartbeat
        self.heartbeat_s = heartbeat_s
        self._beat_at = time.monotonic()
        self.kill = KillSwitch(self.run_dir, self.clock)
        # the state is saved after every step that changed it: in place, what changed
        self.store = CheckpointStore(self.run_dir / STATE)
        self.silent = SignalsWithoutOrders(self.notifier)
        self.steps = 0
        self.reports: list[ReconcileReport] = []
        self._seen = self._counts()
        self._journaled_at = 0.0
        self._seconds = 0.0
        self._fill_ids: set[str] = set()

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Mark the run directory, restore its state if it has one, reconcile."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_run_marker(
            self.run_dir,
            {
                "namespace": self.session.setup.namespace,
                "strategy": self.session.setup.strategy.name,
                "symbols": list(self.session.symbols),
                "mode": self.mode.value,
            },
        )
        state = self.run_dir / STATE
        restored = state.exists()
        if restored:
            self.session.restore(load_checkpoint(state))
            log.info("restored state: %d bars, %d events", self.session.n_bars,
                     self.session.events_done)  # fmt: skip
        self.reconcile(recovering=restored, startup=True)
        self._seen = self._counts()
        self._durable(force=True)

    def run(self, max_steps: int | None = None) -> int:
        """Step until the feed ends, ``max_steps`` steps, or a kill; return steps taken."""
        self.kill.install_signal_handlers()
        try:
            while max_steps is None or self.steps < max_steps:
                self._pulse()
                if self._act_on_kill():
                    break
                bars = self.feed.next_bars(self.session.last_ts())
                if bars is None:
                    break
                self.step(bars)
        finally:
            self.kill.restore_signal_handlers()
        # only a run that ended in order is saved here: after an error mid-step the last
        # durable step stands, and a restart resumes from it (a half-done step never is)
        self._durable(force=True)
        return self.steps

    def step(self, bars: pl.DataFrame) -> None:
        t0 = time.perf_counter()
        was_recovering = self.session.driver.holding
        self.session.on_bars(bars)
        self.steps += 1
        caught_up = was_recovering and not self.session.driver.holding
        if caught_up:
            self.session.driver.hold_after = None
        if caught_up or (self.reconcile_every and self.steps % self.reconcile_every == 0):
            self.reconcile()
        self._alerts()
        self._seconds += time.perf_counter() - t0
        self._durable()
        if self.on_step is not None:
            self.on_step(self)

    def reconcile(self, recovering: bool = False, startup: bool = False) -> ReconcileReport:
        """Reconcile with the broker (``reconcile.py``), journal what it found (the
        session's reconcile rows) and alert on desyncs and unprotected positions."""
        report = reconcile(self.session, self.broker, self.fills_since(), recovering=recovering)
        report.startup = startup
        for symbol, (held, covered) in sorted(report.unprotected.items()):
            report.reprotected[symbol] = reprotect(self.session, symbol, held, covered)
        if report.unprotected:
            report.state = trading_state(self.session)
        self.reports.append(report)
        ts = self._ts()
        session = self.session
        session.reconcile_rows += report.rows(session.reconciles, ts, session.setup.namespace)
        session.reconciles += 1
        if not recovering and session.n_bars:  # what it read is booked now
            session.fills_checked = max(session.fills_checked, session.last_ts())
        for line in report.lines():
            log.warning("reconcile: %s", line)
        for symbol, (b, m) in sorted(report.desync.items()):
            self.notifier.notify(
                Alert(AlertKind.DESYNC, ts, f"broker holds {b:g}, backstop thought {m:g}",
                      symbol=symbol)
            )  # fmt: skip
        for symbol, (h, c) in sorted(report.unprotected.items()):
            done = report.reprotected[symbol].client_order_ids
            then = f"; re-placed {', '.join(done)}" if done else "; no protective levels known"
            self.notifier.notify(
                Alert(AlertKind.UNPROTECTED_POSITION, ts,
                      f"{h:g} held, {c:g} covered by working protective orders{then}",
                      symbol=symbol)
            )  # fmt: skip
        return report

    # ---- heartbeat ---------------------------------------------------------------------------
    def _pulse(self) -> None:
        """Ping the broker every ``heartbeat_s`` and feed the pipeline the connection
        transitions it reported as controls: each is a guard event in the journal and an
        alert, and a connection restored after the profile's ``kill.disconnect_seconds``
        trips the kill switch."""
        if self.heartbeat is None:
            return
        if time.monotonic() - self._beat_at >= self.heartbeat_s:
            self._beat_at = time.monotonic()
            self.heartbeat.beat()
        for action in self.heartbeat.controls():
            self.session.control(action)
            what = "lost" if action == ControlAction.CONNECTION_LOST else "restored"
            self.notifier.notify(
                Alert(AlertKind.CONNECTION, self._ts(), f"broker connection {what}")
            )

    def fills_since(self) -> int:
        """From when a reconcile asks the broker for executions: the last bar time of the
        last reconcile that finished caught up (everything stamped before it was read then:
        the re-read stays as long as the time between reconciles, not the session), else
        the session's first bar."""
        if self.session.fills_checked >= 0:
            return self.session.fills_checked
        return int(self.session.store.ts[0]) if self.session.n_bars else 0

    # ---- kill switch -----------------------------------------------------------------------------
    def _act_on_kill(self) -> bool:
        request = self.kill.requested()
        if request is None:
            return False
        self.session.control(ControlAction.KILL)
        self.session.settle()
        self.kill.acknowledge(request, "entries cancelled, flattened per profile, HALTED")
        self.notifier.notify(
            Alert(AlertKind.KILL_SWITCH, self._ts(), f"kill switch: {request.reason}")
        )
        self._durable(force=True)
        return True

    # ---- alerts --------------------------------------------------------------------------------
    def _alerts(self) -> None:
        d = self.session.driver
        now = self._counts()
        ts = self._ts()
        verdicts = d.dec.verdicts[self._seen.verdicts : now.verdicts]
        approved = int(np.sum(verdicts["approved"] & (verdicts["intent"] == Intent.ENTRY)))
        sent = now.orders - self._seen.orders
        self.silent.observe(ts, approved, sent, self.session.setup.strategy.name)
        for rec in d.fills[self._seen.fills : now.fills]:
            symbol = self.session.symbols[int(rec["sym"])]
            self.notifier.notify(
                Alert(AlertKind.FILL, ts, f"{float(rec['qty']):g} @ {float(rec['price']):g}",
                      symbol=symbol, details={"order": int(rec["order"])})
            )  # fmt: skip
        for ev in d.g.events[self._seen.guard : now.guard]:
            if int(ev["kind"]) == GuardEventKind.KILL_ACTIVATED:
                self.notifier.notify(Alert(AlertKind.KILL_SWITCH, ts, "kill switch tripped"))

    # ---- durability ------------------------------------------------------------------------------
    def _counts(self) -> StepCounts:
        d = self.session.driver
        return StepCounts(
            verdicts=int(d.dec.ctr[N_VERDICTS]),
            fills=len(d.fills),
            orders=len(d.mirror.orders),
            guard=int(d.g.ai[AI_N_EVENTS]),
            mirror_changes=d.mirror.changes,
            reconciles=self.session.reconciles,
        )

    def _durable(self, force: bool = False) -> None:
        """Save the state when the step changed anything; rewrite the journal at most once a
        second (and whenever an order went out), or when forced."""
        now = self._counts()
        changed = now != self._seen
        if changed or force:
            self.store.save(self.session.checkpoint())
        self._seen = now
        due = time.monotonic() - self._journaled_at >= self.journal_every_s
        if force or (changed and due):
            result = self.session.result(label=f"live:{self.mode.value}", seconds=self._seconds)
            write_journal(result, self.run_dir / JOURNAL, force=True)
            self._journaled_at = time.monotonic()

    def _ts(self) -> int:
        return self.session.last_ts() if self.session.n_bars else self.clock.now_ns()
