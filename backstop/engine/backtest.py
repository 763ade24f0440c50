"""The backtest driver's entry point: bars + an intent table -> compiled loop -> BacktestResult.

The notebook facade that runs a strategy (``Backtest``) composes this with the strategy
registry and lives in ``backstop.runners.backtest``."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from backstop.domain.instruments import Instrument
from backstop.domain.intents import conform_intents
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context
from backstop.engine.core.decide import new_market
from backstop.engine.core.guard import Guard, grow_guard_events, guard_event_room_nb, new_guard
from backstop.engine.core.loop import run_loop_nb
from backstop.engine.core.records import (
    ERROR,
    ERROR_ARG,
    EVENT_DTYPE,
    STATUS_DONE,
    STATUS_ERROR,
    STATUS_NEED_ROOM_EVENTS,
    bar_room_nb,
    ensure_room,
    new_book,
    new_decisions,
    new_portfolio,
)
from backstop.engine.inputs import (
    BarArrays,
    bar_arrays,
    event_array,
    instrument_arrays,
    session_days,
)
from backstop.engine.profile import RiskProfile
from backstop.engine.result import BacktestResult, RunRecords
from backstop.engine.run_warnings import (
    config_warnings,
    early_intent_warnings,
    sizer_warnings,
    text_id_refs,
)
from backstop.errors import BackstopError, ConfigError, DataError, check

ProgressFn = Callable[[int, int], None]

CHUNK_ROWS = 1_000_000


def data_fingerprint(arrays: BarArrays) -> str:
    """The fingerprint of a bar set's whole content: every timestamp, symbol, open, high,
    low, close and volume, so two different datasets never share a run id (nor a journal).

    SHA-256 of each column's bytes (hashlib releases the GIL on large buffers, so the
    columns hash on two threads: W's 520 MB in ~0.15 s), then of the symbols and digests.
    """
    a = arrays
    columns = (a.ts, a.sym, a.open, a.high, a.low, a.close, a.volume)
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = list(pool.map(_column_digest, columns))
    h = hashlib.sha256(f"{arrays.n}|".encode())
    h.update("\x00".join(arrays.symbols).encode())
    for d in digests:
        h.update(d)
    return h.hexdigest()[:16]


def _column_digest(column: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(column).data).digest()


def make_run_id(
    fingerprint: str, config: BacktestConfig, label: str, profile: RiskProfile | None = None
) -> str:
    """Deterministic run id: the same inputs always get the same id (no clock, no uuid4)."""
    risk = (profile or RiskProfile()).content_hash()
    blob = f"{fingerprint}|{config.content_hash()}|{risk}|{label}".encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class PreparedBars:
    """Validated bars with their kernel arrays and fingerprint, made once and reused by every
    run over them (parameter sweeps pay the conversion once)."""

    bars: pl.DataFrame
    arrays: BarArrays
    fingerprint: str
    counts: dict[str, int]  # bars per symbol: what a strategy's window is checked against

    @classmethod
    def of(cls, bars: pl.DataFrame) -> PreparedBars:
        bars = bars.rechunk()  # one chunk per column: the kernels read the columns in place
        arrays = bar_arrays(bars)
        per_symbol = np.bincount(arrays.sym, minlength=len(arrays.symbols))
        counts = {name: int(n) for name, n in zip(arrays.symbols, per_symbol, strict=True)}
        return cls(bars=bars, arrays=arrays, fingerprint=data_fingerprint(arrays), counts=counts)


def prepare_bars(bars: Any, argument: str = "bars") -> PreparedBars:
    """Validated, prepared bars from a frame (polars or pandas), a path, or ``PreparedBars``.

    Anything else (``None``, a number, a list) is a ``DataError`` naming ``argument``; so
    are fewer than two bars, on which no order could ever fill.
    """
    from backstop.data import load_bars, load_bars_frame

    if isinstance(bars, PreparedBars):
        return bars
    if isinstance(bars, str | os.PathLike):
        frame, source = load_bars(bars), os.fspath(bars)
    elif isinstance(bars, pl.DataFrame | pl.LazyFrame) or _is_pandas(bars):
        frame, source = load_bars_frame(bars, source=argument), argument
    else:
        raise DataError(
            "expected bars as a polars or pandas DataFrame or a path to a .csv, .parquet or "
            f".duckdb file, got {type(bars).__name__}",
            source=argument,
        )
    check_enough_bars(frame, source)
    return PreparedBars.of(frame)


def check_enough_bars(bars: pl.DataFrame, source: str) -> None:
    """Refuse a single bar: a signal at a bar's close fills at the next bar's open at best."""
    check(
        bars.height >= 2,
        DataError(
            f"only {bars.height} bar: a backtest needs at least 2 (an order sent at a bar's "
            "close fills at the next bar's open)",
            source=source,
        ),
    )


def _is_pandas(obj: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return isinstance(obj, pd.DataFrame)


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
) -> BacktestResult:
    """Run ``bars`` and an intent table through the compiled pipeline.

    A plain frame is validated first (``PreparedBars`` are already validated and prepared).
    ``profile`` sets the guardrails (sizer, protection, limits); the default is the
    permissive research profile. ``conformed`` says the table already came out of
    ``conform_intents`` (as ``Strategy.intents`` returns it), so it is not checked twice.
    """
    t0 = time.perf_counter()
    config = config or BacktestConfig()
    check(
        isinstance(config, BacktestConfig),
        ConfigError("config", f"expected a BacktestConfig, got {type(config).__name__}"),
    )
    prepared = prepare_bars(bars)
    if not conformed:
        intents = conform_intents(intents)
    profile = _profile_of(profile)
    refs = text_id_refs(intents, profile)
    warnings = [
        *config_warnings(config),
        *sizer_warnings(intents, profile),
        *early_intent_warnings(intents, int(prepared.arrays.ts[0])),
    ]
    arrays = prepared.arrays
    need_sessions = bool(config.max_participation > 0) or bool(
        intents.filter((pl.col("tif") == 0) & (pl.col("otype") != 0)).height
    )
    if need_sessions:
        arrays = replace(arrays, session=session_days(prepared.bars, config.session_tz))
    inst, specs = instrument_arrays(arrays.symbols, instruments)
    events, strategies, event_symbols = event_array(
        intents, prepared.bars, arrays.symbols, arrays.sym
    )
    ctx = bar_context(prepared.bars, arrays, specs, profile)
    prm = config.sim_params()
    rp = profile.array()
    n_ev = len(events)
    n_sym = len(arrays.symbols)
    book = new_book(n_sym, prm.max_working, 2 * n_ev + 64, n_ev + 64)
    pf = new_portfolio(n_sym, config.initial_cash, n_ev // 2 + 64, inst.mult, inst.is_future)
    # one verdict per event, plus the headroom the loop keeps for a bar (an engine exit per
    # symbol): without it the last bars of a many-symbol run doubled the buffer (W: 20 ms)
    dec = new_decisions(n_ev + n_sym + 16)
    g = guard_for(specs, strategies, profile, config.initial_cash)
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
    run_seconds = time.perf_counter() - t0
    records = RunRecords.take(book, pf, dec, g)
    run_id = make_run_id(prepared.fingerprint, config, label, profile)
    return BacktestResult(
        run_id=run_id,
        config=config,
        profile=profile,
        bars=prepared.bars,
        arrays=arrays,
        instruments=specs,
        strategies=strategies,
        event_symbols=event_symbols,
        records=records,
        final_cash=float(pf.acct[0]),
        run_seconds=run_seconds,
        label=label,
        warnings=warnings,
        source_refs=refs,
    )


def _profile_of(profile: Any) -> RiskProfile:
    """A ``RiskProfile`` from one, a preset name or a TOML path (None: research defaults)."""
    if isinstance(profile, RiskProfile):
        return profile
    check(
        profile is None or isinstance(profile, str | os.PathLike),
        ConfigError(
            "profile", f"expected a RiskProfile, a preset name or a path, got {type(profile)}"
        ),
    )
    return RiskProfile.load(profile)


def guard_for(
    specs: tuple[Instrument, ...],
    strategies: tuple[str, ...],
    profile: RiskProfile,
    initial_cash: float,
) -> Guard:
    """Fresh guardrail state for a run: sectors numbered in sorted order, the profile's
    source-id cursor for every strategy."""
    sectors = sorted({spec.sector for spec in specs if spec.sector})
    sector = np.array(
        [sectors.index(spec.sector) if spec.sector else -1 for spec in specs], dtype=np.int64
    )
    cursor = profile.get("risk.source_cursor")
    return new_guard(
        len(strategies),
        len(specs),
        initial_cash,
        sector,
        EVENT_DTYPE,
        source_cursor=-1 if cursor is None else int(cursor),
    )
