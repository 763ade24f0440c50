"""The backtest driver's entry point: bars + an intent table -> compiled loop -> BacktestResult.

The notebook facade that runs a strategy (``Backtest``) composes this with the strategy
registry and lives in ``backstop.runners.backtest``."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from backstop.brokers.sim.book import ensure_room, new_book
from backstop.brokers.sim.loop import run_loop_nb
from backstop.domain.instruments import Instrument
from backstop.engine.config import BacktestConfig
from backstop.engine.core.decide import new_market
from backstop.engine.core.guard import grow_guard_events, guard_event_room_nb
from backstop.engine.core.records import (
    ERROR,
    ERROR_ARG,
    N_FILLS,
    N_ORDERS,
    STATUS_DONE,
    STATUS_ERROR,
    STATUS_NEED_ROOM_EVENTS,
    bar_room_nb,
    new_decisions,
    new_portfolio,
)
from backstop.engine.learning_state import LearningState
from backstop.engine.prepare import PreparedBars, PreparedRun, prepare_run
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult, RunRecords
from backstop.errors import BackstopError

ProgressFn = Callable[[int, int], None]

CHUNK_ROWS = 1_000_000


def run_backtest(
    bars: pl.DataFrame | PreparedBars,
    intents: pl.DataFrame,
    config: BacktestConfig | None = None,
    *,
    instruments: dict[str, Instrument] | None = None,
    label: str = "intents",
    progress: ProgressFn | None = None,
    profile: RiskProfile | None = None,
    conformed: bool = False,
    learning: LearningState | None = None,
) -> BacktestResult:
    """Run ``bars`` and an intent table through the compiled pipeline.

    A plain frame is validated first (``PreparedBars`` are already validated and prepared).
    ``profile`` sets the guardrails (sizer, protection, limits); the default is the
    permissive research profile. ``conformed`` says the table already came out of
    ``conform_intents`` (as ``Strategy.intents`` returns it), so it is not checked twice.
    ``learning`` restores a previous run's learning state (``backstop.engine.learning_state``).
    """
    t0 = time.perf_counter()
    run = prepare_run(
        bars,
        intents,
        config,
        instruments=instruments,
        label=label,
        profile=profile,
        conformed=conformed,
        learning=learning,
    )
    arrays, events, inst, prm, ctx = run.arrays, run.events, run.inst, run.prm, run.ctx
    rp = run.profile.array(run.strategies)
    n_ev = len(events)
    n_sym = len(arrays.symbols)
    book = new_book(n_sym, prm.max_working, 2 * n_ev + 64, n_ev + 64)
    pf = new_portfolio(n_sym, run.config.initial_cash, n_ev // 2 + 64, inst.mult, inst.is_future)
    # one verdict per event, plus the headroom the loop keeps for a bar (an engine exit per
    # symbol): without it the last bars of a many-symbol run doubled the buffer (W: 20 ms)
    dec = new_decisions(n_ev + n_sym + 16)
    g = run.new_guard()
    mkt = new_market(book.xpos, np.zeros(n_sym), pf.mark, pf.avg, inst.tick, inst.lot, pf.mult)
    i, j, skip = 0, 0, False
    while i < arrays.n or j < n_ev:
        stop = min(arrays.n, i + CHUNK_ROWS) if i < arrays.n else arrays.n
        i, j, status = run_loop_nb(
            arrays.ts[:stop],
            arrays.sym[:stop],
            arrays.open[:stop],
            arrays.high[:stop],
            arrays.low[:stop],
            arrays.close[:stop],
            arrays.volume[:stop],
            arrays.session[:stop],
            ctx,
            events,
            prm,
            rp,
            book,
            pf,
            dec,
            g,
            mkt,
            i,
            j,
            skip,
        )
        if status == STATUS_ERROR:
            raise BackstopError(
                f"order state machine refused a transition (code {int(book.ctr[ERROR])}, "
                f"order {int(book.ctr[ERROR_ARG])}) at bar row {i}"
            )
        skip = status == STATUS_NEED_ROOM_EVENTS
        if status != STATUS_DONE:
            # the room the loop's checks ask for, for one bar and its events
            room = bar_room_nb(int(book.work.shape[1]), n_sym)
            ensure_room(book, pf, dec, room, room, room, n_sym + 1)
            grow_guard_events(g, guard_event_room_nb(int(g.si.shape[0]), n_sym))
        elif i >= arrays.n and j < n_ev:
            raise BackstopError(f"{n_ev - j} events were left unvisited after the last bar")
        if progress is not None:
            progress(i, arrays.n)
    records = RunRecords.of_driver(
        book.orders[: book.ctr[N_ORDERS]], book.fills[: book.ctr[N_FILLS]], pf, dec, g
    )
    run_id = run.run_id  # waits for the bars' fingerprint, hashed on its thread meanwhile
    return run_result(run, records, float(pf.acct[0]), time.perf_counter() - t0, run_id)


def run_result(
    run: PreparedRun,
    records: RunRecords,
    final_cash: float,
    run_seconds: float,
    run_id: str | None = None,
) -> BacktestResult:
    """The result of a run prepared by ``prepare_run`` (either driver); ``run_id`` when the
    caller has it already."""
    return BacktestResult(
        run_id=run_id or run.run_id,
        config=run.config,
        profile=run.profile,
        bars=run.prepared.bars,
        arrays=run.arrays,
        instruments=run.specs,
        strategies=run.strategies,
        event_symbols=run.event_symbols,
        records=records,
        final_cash=final_cash,
        run_seconds=run_seconds,
        label=run.label,
        warnings=list(run.warnings),
        source_refs=run.source_refs,
    )
