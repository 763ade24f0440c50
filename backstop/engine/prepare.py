"""One set-up for every run: bars, intents, profile and config -> the kernels' inputs.

``prepare_run`` does what the compiled backtest loop and the step-by-step event driver both
need before the first bar: validated bars and their arrays (with exchange sessions when DAY
orders or a volume cap need them), the conformed intent table and its event records in
decision order, the instruments, the per-bar context (session day, market hours, close,
data quality), the profile's settings, the fresh guardrail state, the run id and the stated
warnings. Both drivers start from the same ``PreparedRun``, so they cannot drift apart in
how a run is set up.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from backstop.domain.instruments import Instrument
from backstop.domain.intents import conform_intents
from backstop.engine.config import BacktestConfig
from backstop.engine.context import bar_context, daily_bar_closes
from backstop.engine.core.guard import SI_OWN, Guard, new_guard
from backstop.engine.core.params import SimParams
from backstop.engine.core.records import EVENT_DTYPE, BarContext, Instruments
from backstop.engine.inputs import (
    BarArrays,
    bar_arrays,
    event_array,
    instrument_arrays,
    session_days,
)
from backstop.engine.profile import RiskProfile
from backstop.engine.run_warnings import (
    config_warnings,
    early_intent_warnings,
    sizer_warnings,
    text_id_refs,
)
from backstop.errors import ConfigError, DataError, check

if TYPE_CHECKING:
    from backstop.data.scan import BarColumns
    from backstop.data.validate import CheckedBars
    from backstop.engine.learning_state import LearningState


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """Everything a driver needs before the first bar (see the module doc)."""

    prepared: PreparedBars
    arrays: BarArrays
    intents: pl.DataFrame
    config: BacktestConfig
    profile: RiskProfile
    inst: Instruments
    specs: tuple[Instrument, ...]
    events: np.ndarray
    strategies: tuple[str, ...]
    event_symbols: pl.Series
    ctx: BarContext
    prm: SimParams
    label: str
    id_label: str  # the label the run id is made from (``label``, and a restored state's)
    source_refs: pl.DataFrame | None
    warnings: list[str]
    learning: LearningState | None = None  # restored over the fresh guard (learning_state)

    @property
    def run_id(self) -> str:
        """The run's deterministic id. Asked for once the run is done, not at set-up: it
        needs the bars' fingerprint, whose hashing (W: 0.26 s) then overlaps the strategy,
        the set-up and the run instead of holding the run up."""
        return make_run_id(self.prepared.fingerprint, self.config, self.id_label, self.profile)

    def new_guard(self) -> Guard:
        """Fresh guardrail state for this run, with the learning state it restores."""
        g = guard_for(self.specs, self.strategies, self.profile, self.config.initial_cash)
        if self.learning is not None:
            self.learning.apply(g, self.strategies, self.arrays.symbols)
        return g


def prepare_run(
    bars: Any,
    intents: Any,
    config: BacktestConfig | None = None,
    *,
    instruments: dict[str, Instrument] | None = None,
    label: str = "intents",
    profile: Any = None,
    conformed: bool = False,
    learning: LearningState | None = None,
) -> PreparedRun:
    """Validate and lay out one run's inputs (``conformed``: ``intents`` already came out of
    ``conform_intents``, as ``Strategy.intents`` returns it, so it is not checked twice)."""
    config = config or BacktestConfig()
    check(
        isinstance(config, BacktestConfig),
        ConfigError("config", f"expected a BacktestConfig, got {type(config).__name__}"),
    )
    prepared = prepare_bars(bars)
    if not conformed:
        intents = conform_intents(intents)
    profile = profile_of(profile)
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
    warnings += sector_warnings(specs, profile)
    events, strategies, event_symbols = event_array(
        intents,
        prepared.bars,
        arrays.symbols,
        arrays.sym,
        daily_close=daily_bar_closes(arrays, specs, profile),
    )
    id_label = label  # a run restored from a learning state is another run
    if learning is not None:  # a state judged under other rules is refused, never applied
        learning.check_fits(profile, strategies)
        warnings += learning.symbol_warnings(strategies, arrays.symbols)
        id_label = f"{label}|learning:{learning.digest()}"
    return PreparedRun(
        prepared=prepared,
        arrays=arrays,
        intents=intents,
        config=config,
        profile=profile,
        inst=inst,
        specs=specs,
        events=events,
        strategies=strategies,
        event_symbols=event_symbols,
        ctx=bar_context(prepared.bars, arrays, specs, profile),
        prm=config.sim_params(),
        label=label,
        id_label=id_label,
        source_refs=refs,
        warnings=warnings,
        learning=learning,
    )


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
    run over them (parameter sweeps pay the conversion once).

    The fingerprint is hashed on a thread started by ``of``: only the run id needs it, at the
    end of a run's set-up, so the hashing (W: 0.3 s of CPU over 520 MB) overlaps the
    strategy and the set-up instead of delaying them. ``fingerprint`` waits for it (and
    raises what the hashing raised); a pickled ``PreparedBars`` carries the finished value.
    """

    bars: pl.DataFrame
    arrays: BarArrays
    counts: dict[str, int]  # bars per symbol: what a strategy's window is checked against
    digest: Future[str] = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """``data_fingerprint`` of the bars (waits for the thread hashing them)."""
        return self.digest.result()

    @classmethod
    def of(cls, bars: pl.DataFrame, columns: BarColumns | None = None) -> PreparedBars:
        """Prepare validated ``bars``; ``columns``: their arrays, when validation made them
        (``CheckedBars.columns``: the frame then already reads from them)."""
        if columns is None:
            bars = bars.rechunk()  # one chunk per column: the kernels read the columns in place
        arrays = bar_arrays(bars, columns)
        if columns is not None:
            per_symbol = columns.per_symbol
        else:
            per_symbol = np.bincount(arrays.sym, minlength=len(arrays.symbols))
        counts = {name: int(n) for name, n in zip(arrays.symbols, per_symbol, strict=True)}
        return cls(bars=bars, arrays=arrays, counts=counts, digest=_hashed_later(arrays))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_prepared_with, (self.bars, self.arrays, self.counts, self.fingerprint))


def _hashed_later(arrays: BarArrays) -> Future[str]:
    """``data_fingerprint(arrays)`` started on its own thread (the bars' arrays are never
    written after ``bar_arrays`` made them, so the thread reads what the run reads)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backstop-fingerprint")
    try:
        return pool.submit(data_fingerprint, arrays)
    finally:
        pool.shutdown(wait=False)  # the thread ends when the hash is done


def _prepared_with(
    bars: pl.DataFrame, arrays: BarArrays, counts: dict[str, int], fingerprint: str
) -> PreparedBars:
    """A ``PreparedBars`` whose fingerprint is known already (unpickling one)."""
    done: Future[str] = Future()
    done.set_result(fingerprint)
    return PreparedBars(bars=bars, arrays=arrays, counts=counts, digest=done)


def prepare_bars(bars: Any, argument: str = "bars") -> PreparedBars:
    """Validated, prepared bars from a frame (polars or pandas), a path, or ``PreparedBars``.

    Anything else (``None``, a number, a list) is a ``DataError`` naming ``argument``; so
    are fewer than two bars, on which no order could ever fill.
    """
    from backstop.data.loaders import check_frame, read_bars

    if isinstance(bars, PreparedBars):
        return bars
    if isinstance(bars, str | os.PathLike):
        checked, source = read_bars(bars), os.fspath(bars)
    elif isinstance(bars, pl.DataFrame | pl.LazyFrame) or is_pandas(bars):
        checked, source = check_frame(bars, source=argument), argument
    else:
        raise DataError(
            "expected bars as a polars or pandas DataFrame or a path to a .csv, .parquet or "
            f".duckdb file, got {type(bars).__name__}",
            source=argument,
        )
    return prepare_checked(checked, source)


def prepare_checked(checked: CheckedBars, source: str) -> PreparedBars:
    """``PreparedBars`` of bars just validated, with the arrays the validation made (if it
    did), after refusing fewer than two bars (``check_enough_bars``, naming ``source``)."""
    check_enough_bars(checked.bars, source)
    return PreparedBars.of(checked.bars, checked.columns)


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


def is_pandas(obj: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return isinstance(obj, pd.DataFrame)


def profile_of(profile: Any) -> RiskProfile:
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


def sector_names(specs: tuple[Instrument, ...], profile: RiskProfile) -> list[str]:
    """Each symbol's sector: its instrument's, else the profile's ``[sectors]`` table's, else
    "" (none). The two naming different sectors for one symbol is an error naming both."""
    table = dict(profile.sectors)
    out = []
    for spec in specs:
        listed = table.get(spec.symbol, "")
        check(
            not (spec.sector and listed and spec.sector != listed),
            ConfigError(
                f"sectors.{listed}",
                f"{spec.symbol} is in sector {spec.sector!r} by its instrument",
                source=profile.source,
            ),
        )
        out.append(spec.sector or listed)
    return out


def sector_warnings(specs: tuple[Instrument, ...], profile: RiskProfile) -> list[str]:
    """Say when the sector cap is set but no symbol of the run has a sector: it cannot act."""
    if not profile.uses("risk.max_sector_pct") or any(sector_names(specs, profile)):
        return []
    return [
        "risk.max_sector_pct is set but no symbol of the run has a sector, so the cap never "
        'applies: give the profile a [sectors] table (tech = ["AAPL", "MSFT"]) or the run an '
        "instrument file (--instruments FILE)"
    ]


def guard_for(
    specs: tuple[Instrument, ...],
    strategies: tuple[str, ...],
    profile: RiskProfile,
    initial_cash: float,
) -> Guard:
    """Fresh guardrail state for a run: sectors (``sector_names``) numbered in sorted order, the
    profile's
    source-id cursor for every strategy, and which strategies have limits of their own."""
    names = sector_names(specs, profile)
    sectors = sorted({name for name in names if name})
    sector = np.array([sectors.index(n) if n else -1 for n in names], dtype=np.int64)
    cursor = profile.get("risk.source_cursor")
    g = new_guard(
        len(strategies),
        len(specs),
        initial_cash,
        sector,
        EVENT_DTYPE,
        source_cursor=-1 if cursor is None else int(cursor),
    )
    for k, name in enumerate(strategies):
        if profile.has_own_limits(name):
            g.si[k, SI_OWN] = 1  # its halts and position count are its own
    return g
