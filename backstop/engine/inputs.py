"""Turn validated bars and an intent table into the plain arrays the kernels read.

An intent is decided at the close of the first bar of its symbol whose timestamp is at or
after the intent's own (a strategy's intents carry their bar's timestamp, so they are decided
at that bar's close). Intents for symbols without bars, or later than their symbol's last bar,
still become events: the decision journals them as refused (UNKNOWN_SYMBOL,
NO_BAR_AFTER_SIGNAL) so that nothing is dropped without a trace.

Events at one bar are decided exits first, then entries, each in the order of the intent
table (ts, then original row): (bar, priority, seq) is the total order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from backstop.domain.enums import EventKind, Intent
from backstop.domain.instruments import Instrument, lookup
from backstop.engine.core import recycle
from backstop.engine.core.eventpack import pack_events_nb
from backstop.engine.core.records import EVENT_DTYPE, Instruments

if TYPE_CHECKING:
    from backstop.data.scan import BarColumns

# event field <- intent column, where the names differ; defaults for missing values
INTENT_COLUMN_OF = {
    "exit_role": "exit_reason",
    "advice": "advisory",
    "advice_conf": "advisory_confidence",
}
EVENT_DEFAULTS = {"exit_role": 3, "source_id": -1}


@dataclass(frozen=True, slots=True)
class BarArrays:
    """Bars as contiguous arrays in engine order (ts, then symbol)."""

    ts: np.ndarray
    sym: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    session: np.ndarray
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        # read-only views, however the arrays were made: numba compiles a kernel anew for
        # each mix of writable and read-only arrays, and the engine never writes bars
        for name in ("ts", "sym", "open", "high", "low", "close", "volume", "session"):
            object.__setattr__(self, name, _read_only(getattr(self, name)))

    @property
    def n(self) -> int:
        return len(self.ts)


def session_days(bars: pl.DataFrame, session_tz: str) -> np.ndarray:
    """Calendar day of each bar in the exchange's time zone (what bounds a DAY order)."""
    return (
        bars.select(
            pl.from_epoch("ts", time_unit="ns")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(session_tz)
            .dt.date()
            .cast(pl.Int32)
        )
        .to_series()
        .to_numpy()
        .astype(np.int32)
    )


def bar_arrays(bars: pl.DataFrame, columns: BarColumns | None = None) -> BarArrays:
    """Extract arrays from validated bars; symbols are numbered in sorted order.

    ``columns``: the same arrays, made by validation's compiled pass over ``bars``
    (``CheckedBars.columns``), taken as they are instead of converting the frame again.
    Sessions start as zeros; a run with DAY orders to expire swaps in ``session_days``.
    """
    if columns is not None:
        c = columns
        return BarArrays(
            ts=c.ts,
            sym=c.sym,
            open=c.open,
            high=c.high,
            low=c.low,
            close=c.close,
            volume=c.volume,
            session=np.zeros(len(c.ts), dtype=np.int32),
            symbols=c.symbols,
        )
    symbols = tuple(sorted(bars.get_column("symbol").unique().to_list()))
    if len(symbols) == 1:
        sym = np.zeros(bars.height, dtype=np.int32)
    else:
        sym = (
            bars.get_column("symbol")
            .cast(pl.Enum(list(symbols)))
            .to_physical()
            .to_numpy()
            .astype(np.int32)
        )
    ts = bars.get_column("ts").to_numpy()
    session = np.zeros(len(ts), dtype=np.int32)

    def col(name: str) -> np.ndarray:
        return np.ascontiguousarray(bars.get_column(name).to_numpy(), dtype=np.float64)

    return BarArrays(
        ts=np.ascontiguousarray(ts, dtype=np.int64),
        sym=np.ascontiguousarray(sym),
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=col("close"),
        volume=col("volume"),
        session=session,
        symbols=symbols,
    )


def instrument_arrays(
    symbols: tuple[str, ...], overrides: dict[str, Instrument] | None = None
) -> tuple[Instruments, tuple[Instrument, ...]]:
    """Resolve each symbol's instrument and lay the numbers out for the kernels."""
    specs = tuple(lookup(s, overrides) for s in symbols)
    arrays = Instruments(
        tick=np.array([i.tick_size for i in specs], dtype=np.float64),
        lot=np.array([i.lot_size for i in specs], dtype=np.float64),
        mult=np.array([i.multiplier for i in specs], dtype=np.float64),
        is_future=np.array([i.is_future for i in specs], dtype=np.bool_),
    )
    return arrays, specs


def _bar_rows(intents: pl.DataFrame, bars: pl.DataFrame) -> np.ndarray | None:
    """The bar row of every intent when the strategy supplied one that checks out, else None."""
    if intents.is_empty() or intents.get_column("bar").null_count():
        return None
    rows = intents.get_column("bar").to_numpy()
    if rows.min() < 0 or rows.max() >= bars.height:
        return None
    same_ts = bars.get_column("ts").to_numpy()[rows] == intents.get_column("ts").to_numpy()
    if not same_ts.all():
        return None
    picked = bars.get_column("symbol").gather(rows)
    if not (picked == intents.get_column("symbol")).all():
        return None
    return rows.astype(np.int64)


def event_array(
    intents: pl.DataFrame,
    bars: pl.DataFrame,
    symbols: tuple[str, ...],
    bar_sym: np.ndarray | None = None,
    daily_close: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[str, ...], pl.Series]:
    """Attach each intent to its bar row; return (sorted events, strategy ids, event symbols).

    Strategy ids are listed in the numbering the events use; ``event symbols`` names the
    symbol each event (in sorted order) was for, including symbols that have no bars.
    ``bar_sym`` (the bars' symbol codes, ``BarArrays.sym``) saves numbering the intents'
    symbols again when the strategy named each intent's bar row. ``daily_close``: per bar
    row, when a daily bar's session closed (``context.daily_bar_closes``; see ``_asof_rows``).
    """
    ids = intents.get_column("strategy_id").fill_null("default")
    if ids.len() and (ids == ids[0]).all():
        strategies: tuple[str, ...] = (ids[0],)  # one strategy: no need to hash every id
    else:
        strategies = tuple(sorted(ids.unique().to_list()))
    rows = _bar_rows(intents, bars) if intents.height else np.zeros(0, dtype=np.int64)
    sym = None
    if rows is None:
        rows = _asof_rows(intents, bars, symbols, daily_close)
    elif bar_sym is not None and len(symbols) > 1:
        sym = bar_sym[rows].astype(np.int64)  # each row checked to be the intent's symbol
    bars_ts = bars.get_column("ts").to_numpy()
    return _events_from_rows(intents, rows, symbols, strategies, bars_ts, sym)


def _asof_rows(
    intents: pl.DataFrame,
    bars: pl.DataFrame,
    symbols: tuple[str, ...],
    daily_close: np.ndarray | None = None,
) -> np.ndarray:
    """Bar row of each intent: its symbol's first bar at or after the intent's ts.

    Intents later than their symbol's last bar get ``-2`` (NO_BAR_AFTER_SIGNAL); intents for
    symbols without bars get ``-1`` (UNKNOWN_SYMBOL). Both are decided, and refused, at the
    first bar of any symbol at or after their ts (else the last bar).

    Daily bars (seed 003: a 16:05 ET signal executes at the next 09:30 open): a daily bar is
    stamped at the start of its date, yet its prices are known only at its session's close.
    An intent after that close (``daily_close`` of its symbol's last bar at or before it)
    and before the next bar's stamp is decided at that bar, so it fills at the next bar's
    open rather than a session later. An intent exactly at a bar's stamp keeps the rule above.
    """
    bar_rows = (
        bars.select("ts", "symbol").with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    )
    keyed = intents.select("ts", "symbol").with_row_index("_i")
    matched = (
        keyed.sort("ts")
        .join_asof(
            bar_rows.sort("ts"), on="ts", by="symbol", strategy="forward", check_sortedness=False
        )
        .sort("_i")
        .get_column("row")
    )
    known = intents.get_column("symbol").is_in(list(symbols)).to_numpy()
    out = matched.fill_null(-1).to_numpy().astype(np.int64)
    out[(out < 0) & known] = -2
    if daily_close is not None and len(out):
        before = (
            keyed.sort("ts")
            .join_asof(
                bar_rows.sort("ts"),
                on="ts",
                by="symbol",
                strategy="backward",
                check_sortedness=False,
            )
            .sort("_i")
            .get_column("row")
        )
        prev = before.fill_null(-1).to_numpy().astype(np.int64)
        ts = intents.get_column("ts").to_numpy()
        after_close = ts >= daily_close[np.maximum(prev, 0)]
        late = (prev >= 0) & (out >= 0) & (prev != out) & after_close
        out[late] = prev[late]
    return out


def _events_from_rows(
    intents: pl.DataFrame,
    rows: np.ndarray,
    symbols: tuple[str, ...],
    strategies: tuple[str, ...],
    bars_ts: np.ndarray,
    sym: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[str, ...], pl.Series]:
    """Event records from intents and their bar rows (negative rows: refused, see
    ``_asof_rows``), sorted by (bar, priority, seq); ``seq`` is the stable order by ts.
    ``sym``: the intents' symbol codes when the caller has them."""
    n = intents.height
    ts = intents.get_column("ts").to_numpy()
    if n < 2 or bool((ts[1:] >= ts[:-1]).all()):
        seq = np.arange(n, dtype=np.int64)  # a strategy's own table: already in ts order
    else:
        order = np.argsort(ts, kind="stable")
        seq = np.empty(n, dtype=np.int64)
        seq[order] = np.arange(n)
    refused = rows < 0
    bar = rows
    if refused.any():
        # decided (and refused) at the first bar of any symbol at or after their ts
        bar = rows.copy()
        at = np.searchsorted(bars_ts, ts[refused], side="left")
        bar[refused] = np.minimum(at, len(bars_ts) - 1)
    intent = intents.get_column("intent").to_numpy()
    kind = intents.get_column("kind").to_numpy()
    stop_updates = kind == int(EventKind.STOP_UPDATE)
    if stop_updates.any():
        intent = np.where(stop_updates, int(Intent.STOP_UPDATE), intent).astype(np.int8)
    # controls, then advisories, then stop updates and exits, then entries at one bar
    exits = (intent == int(Intent.EXIT)) | stop_updates
    priority = np.where(kind == 2, 0, np.where(kind == 1, 1, np.where(exits, 2, 3)))
    symbol_col = intents.get_column("symbol")
    if refused.any():
        index = {name: i for i, name in enumerate(symbols)}
        known = symbol_col.replace_strict(index, default=-1, return_dtype=pl.Int32).to_numpy()
        sym = np.where(refused, rows, known)
    elif len(symbols) == 1:
        sym = np.zeros(1, dtype=np.int64)
    elif sym is None:
        sym = symbol_col.cast(pl.Enum(list(symbols))).to_physical().cast(pl.Int64).to_numpy()
    if len(strategies) == 1:
        strategy = np.zeros(1, dtype=np.int64)
    else:
        strategy = (
            intents.get_column("strategy_id")
            .fill_null("default")
            .cast(pl.Enum(list(strategies)))
            .to_physical()
            .cast(pl.Int64)
            .to_numpy()
        )
    filled: dict[tuple[str, float], np.ndarray] = {}

    def column(field: str, default: float) -> np.ndarray:
        """The intent column behind an event field, nulls as ``default``: polars' own buffer
        when it has no nulls, one shared array when it has nothing else."""
        col = intents.get_column(INTENT_COLUMN_OF.get(field, field))
        nulls = col.null_count()
        if nulls == 0:
            out = col.to_numpy()
        elif nulls == n:
            key = (str(col.dtype), default)  # Int8, Int64 or Float64 (INTENT_SCHEMA)
            if key not in filled:
                filled[key] = np.full(n, default, dtype=np.dtype(key[0].lower()))
            out = filled[key]
        else:
            out = col.fill_null(default).to_numpy()
        return _read_only(out)

    perm = _decision_order(bar, priority, seq)
    ev = recycle.empty(n, EVENT_DTYPE)  # pack_events_nb writes every field
    pack_events_nb(
        ev,
        *(_read_only(a) for a in (perm, bar, ts, seq, priority, sym, strategy, intent, kind)),
        tuple(column(name, EVENT_DEFAULTS.get(name, 0)) for name in _CODE_FIELDS),
        tuple(column(name, np.nan) for name in _VALUE_FIELDS),
        tuple(column(name, np.nan) for name in _FRACTION_FIELDS),
    )
    if (perm[1:] > perm[:-1]).all():  # already in decision order (a strategy's own table)
        return ev, strategies, symbol_col
    return ev, strategies, symbol_col.gather(perm)


def _decision_order(bar: np.ndarray, priority: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """The permutation that sorts events by (bar, priority, seq): the identity, found without
    sorting, when they already are (a strategy's table in row order)."""
    n = len(bar)
    if n > 1:
        d_bar = bar[1:] - bar[:-1]
        d_pri = priority[1:] - priority[:-1]
        in_order = (d_bar > 0) | (
            (d_bar == 0) & ((d_pri > 0) | ((d_pri == 0) & (seq[1:] > seq[:-1])))
        )
        if not in_order.all():
            return np.lexsort((seq, priority, bar))
    return np.arange(n, dtype=np.int64)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: polars hands out read-only arrays when it shares its buffers and
    writable copies when it cannot, and numba compiles each mix of the two anew."""
    view = a.view()
    view.flags.writeable = False
    return view


_CODE_FIELDS = (
    "side",
    "otype",
    "tif",
    "exit_role",
    "source_id",
    "advice",
    "control",
    "trade_type",
)
_VALUE_FIELDS = (
    "qty",
    "price",
    "limit_px",
    "entry_stop_px",
    "stop_px",
    "target_px",
    "conviction",
    "target_dollars",
    "advice_conf",
)
# nan/null: none (an exit_fraction of 0 closes the whole position)
_FRACTION_FIELDS = ("stop_pct", "target_pct", "trail_pct", "scale_in_pct", "exit_fraction")
