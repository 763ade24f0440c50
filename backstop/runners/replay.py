"""``backstop replay``: load an incident, re-run it through today's guardrails, report.

PATH is a scenario folder (``incident.toml`` + inputs, optionally ``expect.toml``), a
single log file, or a live run's directory or journal (``backstop.replay.live``). The
profile is ``--profile``, else the scenario's ``expect.toml`` profile, else for a live run
the profile it traded under, else ``post-incident``. Exit codes: 0 when every expectation
holds (or there are none), 1 when one fails, 2 on bad input.

The re-run feeds the incident's decisions (``backstop.replay.decisions``) and advisories
through the same ``PortDriver`` and compiled kernels as a backtest or a live run, against a
``ReplayBroker`` (``replay_broker.py``) seeded with the broker's position at the start.
While today's pipeline decides what the bot decided, the broker keeps the recorded fills
(the world stays the one that happened); at the first decision that differs it switches to
the simulated exchange.
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

from backstop.engine.brackets import Venue
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.driver import PortDriver
from backstop.engine.inputs import BarArrays, instrument_arrays
from backstop.engine.prepare import guard_for
from backstop.engine.profile import RiskProfile
from backstop.replay.decisions import decisions_of
from backstop.replay.events import BrokerFill, BrokerOrder
from backstop.replay.expect import Expectations, check_expectations, load_expectations
from backstop.replay.live import live_journal, live_profile
from backstop.replay.load import load_incident
from backstop.replay.outcome import Outcome, outcome_of
from backstop.replay.rerun import (
    Rerun,
    decision_events,
    instruments_of,
    price_bars,
    seed_positions,
    start_equity,
    start_positions,
    verdict_frame,
)
from backstop.replay.timeline import Incident
from backstop.runners.drive import Cursor, drive
from backstop.runners.replay_broker import ReplayBroker

DEFAULT_PROFILE = "post-incident"


@dataclass
class ReplayRun:
    """A replay and the verdict on its scenario's expectations."""

    outcome: Outcome
    expectations: Expectations | None
    failures: list[str]


def is_live_run(path: Path) -> bool:
    """Whether ``path`` is a live run's directory or journal (not a scenario folder)."""
    return live_journal(path) is not None and not (path / "expect.toml").exists()


def replay(path: str | Path, profile: str | None = None, mode: str = "safe") -> ReplayRun:
    """Replay PATH under ``profile`` (a preset or a TOML file) and check its expectations.

    Without ``profile``, a scenario's ``expect.toml`` names it, a live run is judged by the
    profile it traded under, anything else by ``post-incident``."""
    path = Path(path)
    exp = None
    if path.is_dir() and (path / "expect.toml").exists():
        exp = load_expectations(path / "expect.toml")
    chosen = profile or (exp.profile if exp else None) or DEFAULT_PROFILE
    judged = RiskProfile.load(chosen) if profile or exp or not is_live_run(path) else None
    with gc_paused():
        incident = load_incident(path, mode=mode)  # type: ignore[arg-type]
        # a live run is judged by the profile it traded under, unless --profile names one
        outcome = outcome_of(incident, rerun(incident, judged or live_profile(path)))
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
        symbols, inst, prm, incident.of(BrokerFill), incident.of(BrokerOrder), start, equity
    )
    guard = guard_for(spec_tuple, strategies, profile, equity)
    driver = PortDriver(
        broker, symbols, inst, prm, equity, profile, guard, ctx,
        run_id="replay", venue=Venue(reduce_only=True), strategies=strategies,
    )  # fmt: skip
    opening = seed_positions(driver.pf, start, index, arrays)  # where the broker stood
    for symbol, qty in sorted(start.items()):  # the core's picture of the broker starts there
        if qty:
            driver.mirror.positions[symbol] = qty

    def adopt(order, role, cycle) -> None:  # type: ignore[no-untyped-def]
        driver.mirror.adopt(order, role, cycle, 0)

    broker.adopt = adopt
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
    broker.advance(int(ev["ts"]))
    driver.on_broker_events()  # the recorded fills so far are booked before it is decided
    if decision is not None:
        broker.expect(decision, int(ev["ts"]))
        before = int(driver.dec.ctr[3])
        driver.on_event(ev, j)
        rows[decision.label, decision.ts] = before
        broker.settle(int(ev["ts"]))
    else:
        broker.advance(int(ev["ts"]))
        driver.on_event(ev, j)
