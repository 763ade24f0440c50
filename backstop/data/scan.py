"""The fast path of validation: one compiled pass that also makes the engine's arrays.

``validate_bars`` must count every problem of every row before it can pass a frame. For bars
without missing values this module does that in one pass of ``backstop.engine.core.barcheck``
over the columns as they were read (a Parquet file reads as one chunk per row group): each
chunk is copied into the contiguous arrays the engine reads, counting the value problems on
the way, the symbols are numbered in sorted order (from polars' 64-bit hashes, with polars'
exact count of the symbols proving that no two share a hash), and the (ts, symbol) order is
tested on those numbers. On W (10M bars, 100 symbols, 10 chunks a column) that is ~0.3 s
where the polars checks, the rechunk and ``bar_arrays`` took ~0.6 s (bench/COMMAND.md).

``scan_bars`` only counts; ``backstop.data.validate`` decides. Any missing value (or a
symbol numbering that does not check out) returns ``None``, and any problem or a frame out of
engine order goes back to the polars path, which finds and words the first bad row exactly as
before.
"""

from __future__ import annotations

import mmap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from backstop.data.schema import VALUE_COLUMNS

#: slots of ``copy_check_nb`` in the order of ``validate._value_checks`` (ts, symbol and
#: the five missing-value checks come first there and are zero here: no nulls get this far)
_MISSING_CHECKS = 2 + len(VALUE_COLUMNS)


@dataclass(frozen=True, slots=True)
class BarColumns:
    """Bars as contiguous read-only arrays in the frame's row order; ``sym`` numbers each
    row's symbol by its place in ``symbols`` (sorted), as ``bar_arrays`` does, and
    ``per_symbol`` counts the rows of each."""

    ts: np.ndarray
    sym: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    symbols: tuple[str, ...]
    per_symbol: np.ndarray


@dataclass(frozen=True, slots=True)
class Scan:
    """What one pass found: a count per value check (``validate._value_checks`` order),
    whether the rows are in engine order, and the bars over the new contiguous arrays."""

    counts: tuple[int, ...]
    in_order: bool
    frame: pl.DataFrame
    columns: BarColumns


def scan_bars(df: pl.DataFrame) -> Scan | None:
    """Count the value problems of ``df`` (``BAR_SCHEMA``, at least one row) in one pass.

    ``None`` when the polars path must do it all: a column has missing values (their rows
    are found and worded there), a ``ts`` below the one before it (rows not in engine order,
    which that path sorts), or two symbols that share a hash. Polars hashes and counts the
    symbols on a second thread (it releases the GIL) while this one checks the values: on an
    idle second core the symbols cost no wall time.
    """
    if any(df.get_column(name).null_count() for name in df.columns):
        return None
    # compiled kernels: imported on first use, so that importing backstop.data loads no numba
    from backstop.engine.core.barcheck import hash_codes_nb, renumber_in_order_nb, ts_rises_nb

    chunks = _chunks(df)
    prev = np.iinfo(np.int64).min
    for part in chunks:
        ts_part = _read_only(part[0].to_numpy())
        if not ts_rises_nb(ts_part, prev):
            return None
        prev = int(ts_part[-1]) if len(ts_part) else prev
    symbol = df.get_column("symbol")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backstop-symbols") as pool:
        hashed = pool.submit(_hash_and_count, symbol)
        ts, values, counts = _check_values(chunks, df.height)
        hashes, distinct = hashed.result()
    sym = _empty(len(symbol), np.int32)
    first = hash_codes_nb(hashes, sym)  # numbered in order of first appearance
    # Each symbol has one hash, so as many symbols as hashes means no two symbols share one:
    # then every row's number names its own symbol (polars counted the symbols exactly).
    if distinct != len(first):
        return None  # a 64-bit hash collision: let polars number the symbols
    seen = symbol.gather(first)
    names = seen.to_list()
    blank = seen.str.strip_chars().eq("").arg_true().to_list()  # polars' whitespace rules
    per_symbol = np.zeros(len(names), dtype=np.int64)
    in_order = bool(renumber_in_order_nb(ts, sym, _ranks(names), per_symbol))
    sym.flags.writeable = False
    per_symbol.flags.writeable = False
    o, h, lo, c, v = values
    symbols = tuple(sorted(names))
    columns = BarColumns(ts, sym, o, h, lo, c, v, symbols=symbols, per_symbol=per_symbol)
    frame = df
    if any(df.get_column(name).n_chunks() > 1 for name in ("ts", *VALUE_COLUMNS)):
        # over the new contiguous arrays, which the engine reads: one copy of the bars
        named = dict(zip(VALUE_COLUMNS, values, strict=True))
        frame = pl.DataFrame({"ts": ts, "symbol": symbol, **named})
    missing = [0] * _MISSING_CHECKS
    if blank:  # rows whose symbol is blank (counted by their symbol's sorted place)
        missing[1] = int(sum(per_symbol[columns.symbols.index(names[k])] for k in blank))
    return Scan(
        counts=(*missing, *(int(k) for k in counts)),
        in_order=in_order,
        frame=frame,
        columns=columns,
    )


def _hash_and_count(symbol: pl.Series) -> tuple[np.ndarray, int]:
    """Each row's symbol hash (polars' 64-bit hash) and the exact number of symbols."""
    return _read_only(symbol.hash().to_numpy()), symbol.n_unique()


def _check_values(
    chunks: list[tuple[pl.Series, ...]], n: int
) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """``ts`` and the value columns as contiguous read-only arrays, with the problems counted
    (``check_nb``): the columns themselves when they are one chunk, else new arrays that each
    chunk is copied into on the way (``copy_check_nb``)."""
    from backstop.engine.core.barcheck import N_COUNTS, check_nb, copy_check_nb

    counts = np.zeros(N_COUNTS, dtype=np.int64)
    if len(chunks) == 1:
        ts, *values = (_read_only(part.to_numpy()) for part in chunks[0])
        check_nb(tuple(values), counts)
        return ts, tuple(values), counts
    ts = _empty(n, np.int64)
    out = tuple(_empty(n, np.float64) for _ in VALUE_COLUMNS)
    start = 0
    for parts in chunks:
        ts_part, *value_parts = (_read_only(p.to_numpy()) for p in parts)
        copy_check_nb(start, ts_part, tuple(value_parts), ts, out, counts)
        start += len(ts_part)
    for array in (ts, *out):
        array.flags.writeable = False
    return ts, out, counts


def _ranks(names: list[str]) -> np.ndarray:
    """``rank[k]``: the place of ``names[k]`` in sorted (code point, i.e. polars') order."""
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    return _read_only(rank)


def _chunks(df: pl.DataFrame) -> list[tuple[pl.Series, ...]]:
    """``ts`` and the value columns side by side, one tuple per chunk: as read, when the
    columns share their chunk lengths (columns read from one file do), else each column as
    one chunk (a copy, rarely needed)."""
    names = ("ts", *VALUE_COLUMNS)
    parts = [df.get_column(name).get_chunks() for name in names]
    if len({tuple(len(p) for p in column) for column in parts}) != 1:
        parts = [[df.get_column(name).rechunk()] for name in names]
    return list(zip(*parts, strict=True))


def _empty(n: int, dtype: type) -> np.ndarray:
    """An uninitialised array in an anonymous memory map of its own, its pages mapped at once.

    W's copy fills 480 MB of new memory. In numpy's heap (which asks for transparent huge
    pages) faulting it in cost 0.05-0.8 s of system time on this busy machine, varying from
    run to run; a plain map faulted page by page ~0.3 s; mapped at once (``MAP_POPULATE``,
    Linux) ~0.16 s, steadily. The array owns the map: it is unmapped when the array (and
    any frame over it) is gone."""
    size = max(n * np.dtype(dtype).itemsize, 1)
    if hasattr(mmap, "MAP_PRIVATE"):  # POSIX; MAP_POPULATE is Linux's
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
        return np.frombuffer(mmap.mmap(-1, size, flags=flags), dtype=dtype, count=n)
    return np.frombuffer(mmap.mmap(-1, size), dtype=dtype, count=n)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: the kernels are built for read-only inputs, whatever numpy gives."""
    view = a.view()
    view.flags.writeable = False
    return view
