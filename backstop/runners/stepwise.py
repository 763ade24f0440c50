"""Step-by-step runs: the event driver over a simulated venue, one bar and one event at a
time, resumable from a checkpoint.

This is the Python drive loop a live runner takes (bars and events in order; the venue
matches a bar, the driver books it and supervises, then the bar's events are decided), in
its backtest form: the driver is ``PortDriver`` and the venue the simulated exchange (or any
Broker port v2 that also simulates bars: ``on_bar(..., react=)``). The result comes from the
driver's own records (orders it sent, executions it booked), never from the venue's book.
A ``Stepwise`` run can stop after any event, hand over a ``Checkpoint`` of everything it
decided and of the venue, and a new one (in another process) continues from it to the same
journal as a run that never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from backstop.brokers.sim.backtest import run_result
from backstop.brokers.sim.exchange import SimExchange
from backstop.domain.instruments import Instrument
from backstop.engine.brackets import Venue
from backstop.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from backstop.engine.config import BacktestConfig
from backstop.engine.driver import PortDriver
from backstop.engine.learning_state import LearningState
from backstop.engine.prepare import PreparedBars, prepare_run
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult, RunRecords
from backstop.errors import BackstopError
from backstop.runners.drive import Cursor, drive

BrokerFactory = Callable[..., Any]


class Stepwise:
    """One step-by-step run over prepared bars and an intent table (see module doc)."""

    def __init__(
        self,
        bars: pl.DataFrame | PreparedBars,
        intents: pl.DataFrame,
        config: BacktestConfig | None = None,
        *,
        instruments: dict[str, Instrument] | None = None,
        label: str = "intents",
        profile: RiskProfile | None = None,
        broker_factory: BrokerFactory | None = None,
        learning: LearningState | None = None,
    ) -> None:
        run = prepare_run(
            bars,
            intents,
            config,
            instruments=instruments,
            label=label,
            profile=profile,
            learning=learning,
        )
        self.run = run
        self.config = run.config
        self.profile = run.profile
        self.arrays = run.arrays
        self.events = run.events
        self.run_id = run.run_id
        symbols = run.arrays.symbols
        if broker_factory is None:
            self.venue = SimExchange(symbols, run.inst, run.prm, cash=run.config.initial_cash)
        else:
            self.venue = broker_factory(symbols, run.inst, run.prm)
        self.driver = PortDriver(
            self.venue,
            symbols,
            run.inst,
            run.prm,
            run.config.initial_cash,
            run.profile,
            run.new_guard(),
            run.ctx,
            run_id=run.run_id,
            venue=Venue(reduce_only=True),
            strategies=run.strategies,
        )
        self.cursor = Cursor()
        self.seconds = 0.0

    @property
    def done(self) -> bool:
        """Every bar was matched and every event decided."""
        c = self.cursor
        return c.bars_done >= self.arrays.n and c.events_done >= len(self.events)

    def drive(self, until_event: int | None = None) -> bool:
        """Drive bars and events in order, stopping before event ``until_event`` (None: to the
        end); return whether the input is exhausted."""
        t0 = time.perf_counter()
        try:
            drive(
                self.venue,
                self.driver,
                self.arrays,
                self.events,
                self.cursor,
                until_event=until_event,
            )
        finally:
            self.seconds += time.perf_counter() - t0
        left = len(self.events) - self.cursor.events_done
        to_the_end = until_event is None or until_event >= len(self.events)
        if to_the_end and left > 0:
            raise BackstopError(f"{left} events were left unvisited after the last bar")
        return self.done

    # ---- checkpoints ---------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Everything needed to continue this run elsewhere: the driver's state (guardrails,
        portfolio, verdicts, mirror, bracket plans, booked fills) and the venue's snapshot."""
        parts = self.driver.snapshot()
        parts["venue"] = self.venue.snapshot()
        counters = {"bars_done": self.cursor.bars_done, "events_done": self.cursor.events_done}
        return Checkpoint(run_id=self.run_id, counters=counters, parts=parts)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from ``checkpoint`` (taken by a run over the very same inputs)."""
        if checkpoint.run_id != self.run_id:
            raise BackstopError(
                f"checkpoint belongs to run {checkpoint.run_id}, not to this run ({self.run_id})"
            )
        self.driver.restore(checkpoint.parts)
        self.venue.restore(checkpoint.part("venue"))
        self.cursor = Cursor(checkpoint.counter("bars_done"), checkpoint.counter("events_done"))

    def save(self, path: str | Path) -> Path:
        """Write this run's checkpoint to ``path`` (atomically: see ``save_checkpoint``)."""
        return save_checkpoint(path, self.checkpoint())

    def resume(self, path: str | Path) -> None:
        """Restore from the checkpoint at ``path``."""
        self.restore(load_checkpoint(path))

    def result(self) -> BacktestResult:
        """The run's result and records (what the journal is written from)."""
        d = self.driver
        records = RunRecords.of_driver(d.order_records(), d.fill_records(), d.pf, d.dec, d.g)
        return run_result(self.run, records, float(self.driver.pf.acct[0]), self.seconds)


def run_event_driven(
    bars: pl.DataFrame | PreparedBars,
    intents: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    instruments: dict[str, Instrument] | None = None,
    label: str = "intents",
    profile: RiskProfile | None = None,
    broker_factory: BrokerFactory | None = None,
    learning: LearningState | None = None,
) -> BacktestResult:
    """Step-by-step backtest: Python per bar through Broker port v2 (debugging mode).

    Same inputs as ``run_backtest``, same journal; slower by design, since it is the path a
    live runner takes one event at a time. ``broker_factory(symbols, inst, prm)`` swaps the
    simulated exchange for another Broker port v2 that also simulates bars (``on_bar`` with
    ``react``).
    """
    run = Stepwise(
        bars,
        intents,
        config,
        instruments=instruments,
        label=label,
        profile=profile,
        broker_factory=broker_factory,
        learning=learning,
    )
    run.drive()
    return run.result()
