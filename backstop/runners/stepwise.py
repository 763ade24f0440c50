"""Step-by-step runs: the event driver over a simulated venue, one bar and one event at a
time, resumable from a checkpoint.

This is the Python drive loop a live runner takes (bars and events in order; the venue
matches a bar, the driver books it and supervises, then the bar's events are decided), in
its backtest form: the venue is the simulated exchange (or any broker that also simulates
bars: ``on_bar`` and ``book``). A ``Stepwise`` run can stop after any event, hand over a
``Checkpoint`` of everything it decided and of the venue, and a new one (in another process)
continues from it to the same journal as a run that never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from backstop.brokers.sim.exchange import SimExchange
from backstop.data import load_bars_frame
from backstop.domain.instruments import Instrument
from backstop.domain.intents import conform_intents
from backstop.engine.backtest import PreparedBars, guard_for, make_run_id
from backstop.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.event_driver import EventDriver
from backstop.engine.inputs import event_array, instrument_arrays, session_days
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult, RunRecords
from backstop.engine.run_warnings import text_id_refs
from backstop.errors import BackstopError

BrokerFactory = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far the input was driven: bars matched and booked, events decided."""

    bars_done: int = 0
    events_done: int = 0


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
    ) -> None:
        self.config = config or BacktestConfig()
        if not isinstance(bars, PreparedBars):
            bars = PreparedBars.of(load_bars_frame(bars))
        prepared = bars
        intents = conform_intents(intents)
        a = prepared.arrays
        if (
            self.config.max_participation > 0
            or intents.filter((pl.col("tif") == 0) & (pl.col("otype") != 0)).height
        ):
            a = replace(a, session=session_days(prepared.bars, self.config.session_tz))
        self.prepared, self.arrays, self.label = prepared, a, label
        self.profile = profile or RiskProfile()
        self.source_refs = text_id_refs(intents, self.profile)
        self.inst, self.specs = instrument_arrays(a.symbols, instruments)
        self.events, self.strategies, self.event_symbols = event_array(
            intents, prepared.bars, a.symbols, a.sym
        )
        ctx = bar_context(prepared.bars, a, self.specs, self.profile)
        prm = self.config.sim_params()
        make = broker_factory or SimExchange
        self.venue = make(a.symbols, self.inst, prm)
        guard = guard_for(self.specs, self.strategies, self.profile, self.config.initial_cash)
        cash = self.config.initial_cash
        self.driver = EventDriver(
            self.venue, a.symbols, self.inst, prm, cash, self.profile, guard, ctx
        )
        self.run_id = make_run_id(prepared.fingerprint, self.config, label, self.profile)
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
        a, events, driver, venue = self.arrays, self.events, self.driver, self.venue
        i, j = self.cursor.bars_done, self.cursor.events_done
        if until_event is not None and until_event >= len(events):
            until_event = None  # past the last event: the remaining bars still run
        stop = len(events) if until_event is None else until_event
        try:
            while True:
                # the events of the last bar driven come after it was matched and booked
                while j < stop and i > 0 and int(events[j]["bar"]) == i - 1:
                    driver.on_event(events[j], j)
                    j += 1
                if (until_event is not None and j >= stop) or i >= a.n:
                    break
                s = int(a.sym[i])
                ts = int(a.ts[i])
                o, h, lo, c = (float(x[i]) for x in (a.open, a.high, a.low, a.close))
                venue.on_bar(i, ts, a.symbols[s], o, h, lo, float(a.volume[i]), int(a.session[i]))
                driver.on_bar(i, s, ts, h, lo, c)
                i += 1
        finally:
            self.cursor = Cursor(i, j)
            self.seconds += time.perf_counter() - t0
        if until_event is None and j < len(events):
            raise BackstopError(f"{len(events) - j} events were left unvisited after the last bar")
        return self.done

    # ---- checkpoints ---------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Everything needed to continue this run elsewhere (the venue's book included)."""
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
        records = RunRecords.take(self.venue.book, self.driver.pf, self.driver.dec, self.driver.g)
        return BacktestResult(
            run_id=self.run_id,
            config=self.config,
            profile=self.profile,
            bars=self.prepared.bars,
            arrays=self.arrays,
            instruments=self.specs,
            strategies=self.strategies,
            event_symbols=self.event_symbols,
            records=records,
            final_cash=float(self.driver.pf.acct[0]),
            run_seconds=self.seconds,
            label=self.label,
            source_refs=self.source_refs,
        )


def run_event_driven(
    bars: pl.DataFrame | PreparedBars,
    intents: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    instruments: dict[str, Instrument] | None = None,
    label: str = "intents",
    profile: RiskProfile | None = None,
    broker_factory: BrokerFactory | None = None,
) -> BacktestResult:
    """Step-by-step backtest: Python per bar through the Broker protocol (debugging mode).

    Same inputs as ``run_backtest``, same journal; slower by design, since it is the path a
    live runner takes one event at a time. ``broker_factory(symbols, inst, prm)`` swaps the
    simulated exchange for another Broker that also simulates bars (``on_bar`` and ``book``).
    """
    run = Stepwise(
        bars,
        intents,
        config,
        instruments=instruments,
        label=label,
        profile=profile,
        broker_factory=broker_factory,
    )
    run.drive()
    return run.result()
