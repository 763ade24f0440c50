"""Load bars from CSV, Parquet or DuckDB files, or from in-memory frames, always validated.

Every path goes through ``normalize_bars`` and ``validate_bars``, so a strategy never sees a
frame that skipped the checks. Errors name the path (and the table, for DuckDB); CSV errors
give the file line, counting the header as line 1 and assuming one record per line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from backstop.data.csvcheck import check_header, read_header, unreadable_csv
from backstop.data.schema import VALUE_COLUMNS, from_pandas, normalize_bars
from backstop.data.shapes import ShapeReport, ZoneRule
from backstop.data.validate import CheckedBars, check_bars
from backstop.errors import DataError, check

if TYPE_CHECKING:
    import pandas as pd

_CSV = (".csv",)
_PARQUET = (".parquet", ".pq")
_DUCKDB = (".duckdb", ".db")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_bars(
    path: str | os.PathLike[str],
    *,
    table: str = "bars",
    symbol: str | None = None,
    naive_tz: str | ZoneRule | None = None,
    report: ShapeReport | None = None,
) -> pl.DataFrame:
    """Read, normalize and validate the bars in ``path``, chosen by its extension.

    ``.csv`` is read with polars, ``.parquet``/``.pq`` as Parquet, and ``.duckdb``/``.db``
    is opened read-only and ``table`` (a plain identifier) is read in full. ``symbol`` names
    the symbol of a source without a ``symbol`` column; ``naive_tz`` is the IANA zone of
    timestamps that carry none (or a ``ZoneRule`` choosing it from the symbols); ``report``
    collects what the load assumed (``backstop.data.shapes``). Returns ``BAR_SCHEMA`` rows
    sorted by (ts, symbol).
    """
    return read_bars(path, table=table, symbol=symbol, naive_tz=naive_tz, report=report).bars


def read_bars(
    path: str | os.PathLike[str],
    *,
    table: str = "bars",
    symbol: str | None = None,
    naive_tz: str | ZoneRule | None = None,
    report: ShapeReport | None = None,
    read: Callable[[], pl.DataFrame] | None = None,
) -> CheckedBars:
    """``load_bars``, keeping the engine arrays its check made (``validate.check_bars``).

    ``read``: for a Parquet file, returns its frame from a read started earlier (the CLI
    starts it before importing the engine); called after the path's own checks, and a
    failure of it is worded as this function's own read's would be."""
    source = os.fspath(path)
    file = Path(source)
    ext = file.suffix.lower()
    known = _CSV + _PARQUET + _DUCKDB
    check(
        ext in known,
        DataError(
            f"unknown file type {ext or '(no extension)'!r}: expected one of {', '.join(known)}",
            source=source,
        ),
    )
    check(file.exists(), DataError("file not found", source=source))
    check(file.is_file(), DataError("not a file", source=source))
    first_row = 1
    if ext in _CSV:
        raw = _read_csv(file, source)
        first_row = 2
    elif ext in _PARQUET:
        raw = _read_parquet(file, source, read)
    else:
        source = f"{source}[{table}]"
        raw = _read_duckdb(file, table, source)
    bars = normalize_bars(
        raw, source, default_symbol=symbol, naive_tz=naive_tz, first_row=first_row, report=report
    )
    return check_bars(bars, source, first_row=first_row)


def load_bars_frame(
    df: pl.DataFrame | pl.LazyFrame | pd.DataFrame,
    source: str = "<frame>",
    *,
    symbol: str | None = None,
    naive_tz: str | ZoneRule | None = None,
    report: ShapeReport | None = None,
) -> pl.DataFrame:
    """Normalize and validate bars already in memory: a polars or pandas DataFrame.

    A pandas frame is converted with ``polars.from_pandas`` keeping NaN as NaN (so a NaN price
    is reported as NaN, not as missing); a pandas index named ``ts``, or a ``DatetimeIndex``,
    is used as the ``ts`` column. Row 1 is the frame's first row.
    """
    return check_frame(df, source, symbol=symbol, naive_tz=naive_tz, report=report).bars


def check_frame(
    df: pl.DataFrame | pl.LazyFrame | pd.DataFrame,
    source: str = "<frame>",
    *,
    symbol: str | None = None,
    naive_tz: str | ZoneRule | None = None,
    report: ShapeReport | None = None,
) -> CheckedBars:
    """``load_bars_frame``, keeping the engine arrays its check made (``validate.check_bars``)."""
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    elif not isinstance(df, pl.DataFrame):
        df = from_pandas(df, source)
    bars = normalize_bars(df, source, default_symbol=symbol, naive_tz=naive_tz, report=report)
    return check_bars(bars, source)


def _read_csv(file: Path, source: str) -> pl.DataFrame:
    """Read a CSV; on a value polars cannot type, re-read as text so the row can be named."""
    overrides = {"symbol": pl.String, **dict.fromkeys(VALUE_COLUMNS, pl.Float64)}
    try:
        try:
            frame = pl.read_csv(file, schema_overrides=overrides)
        except pl.exceptions.ComputeError:
            # A bad value (``abc`` in a price, text after 100 integer ts rows): read every
            # column as text and let normalize_bars name the offending line.
            frame = pl.read_csv(file, infer_schema=False)
    except pl.exceptions.NoDataError as exc:
        raise DataError("empty file", source=source) from exc
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise unreadable_csv(file, source) or DataError(
            f"cannot read CSV: {_first_line(exc)}", source=source
        ) from exc
    check_header(read_header(file), source)
    return frame


def _read_parquet(
    file: Path, source: str, read: Callable[[], pl.DataFrame] | None = None
) -> pl.DataFrame:
    """Read a Parquet file (or take the frame ``read`` returns), wrapping any failure in a
    ``DataError`` naming it."""
    try:
        return pl.read_parquet(file) if read is None else read()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"cannot read Parquet: {_first_line(exc)}", source=source) from exc


def _read_duckdb(file: Path, table: str, source: str) -> pl.DataFrame:
    """Read ``table`` in full from a DuckDB file opened read-only, via Arrow."""
    check(
        isinstance(table, str) and _IDENTIFIER.fullmatch(table) is not None,
        DataError(
            f"table {table!r} is not a plain identifier (letters, digits, underscore)",
            source=source,
        ),
    )
    try:
        con = duckdb.connect(str(file), read_only=True)
    except duckdb.Error as exc:
        raise DataError(f"cannot open DuckDB file: {_first_line(exc)}", source=source) from exc
    try:
        arrow = con.sql(f'SELECT * FROM "{table}"').to_arrow_table()
    except duckdb.Error as exc:
        raise DataError(f"cannot read table: {_first_line(exc)}", source=source) from exc
    finally:
        con.close()
    return pl.DataFrame(arrow)


def _first_line(exc: BaseException) -> str:
    """Keep the first line of a library error: the rest is usually hints and context."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
